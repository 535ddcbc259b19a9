// Who the tasks belong to: a user id chosen here (no authentication), or the `sub` of
// a pasted token (--auth jwt). Kept in localStorage so a reload keeps the session.

const USER_KEY = "todo.user";
const TOKEN_KEY = "todo.token";
const USER_ID = /^[A-Za-z0-9._@-]{1,64}$/;

// The token's payload, read without verifying it: the server does that on every request.
export function tokenSubject(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const text = atob(base64.padEnd(base64.length + ((4 - (base64.length % 4)) % 4), "="));
    const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder().decode(bytes));
    return typeof payload.sub === "string" && USER_ID.test(payload.sub) ? payload.sub : null;
  } catch {
    return null;
  }
}

export class Identity {
  // onChosen({user, token}, fromForm) runs whenever a user or token is chosen.
  constructor(auth, messages, onChosen) {
    this.jwt = auth === "jwt";
    this.messages = messages;
    this.onChosen = onChosen;
    this.view = document.getElementById("identity-view");
    this.form = document.getElementById(this.jwt ? "token-form" : "user-form");
    this.input = document.getElementById(this.jwt ? "access-token" : "user-id");
    this.who = document.getElementById("who");
    this.whoText = document.getElementById("who-text");
    const change = document.getElementById("change-identity");
    change.textContent = this.jwt ? "Change token" : "Change user";
    change.addEventListener("click", () => this.ask());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  stored() {
    if (this.jwt) {
      const token = localStorage.getItem(TOKEN_KEY) || "";
      const user = tokenSubject(token);
      return user ? { user, token } : null;
    }
    const user = localStorage.getItem(USER_KEY) || "";
    return USER_ID.test(user) ? { user, token: "" } : null;
  }

  start() {
    const chosen = this.stored();
    if (chosen) this.use(chosen);
    else this.ask();
  }

  // Show the form (prefilled); the rest of the page waits behind it.
  ask(problem = "") {
    const chosen = this.stored();
    this.input.value = chosen ? (this.jwt ? chosen.token : chosen.user) : "";
    this.form.hidden = false;
    this.view.hidden = false;
    this.who.hidden = true;
    document.dispatchEvent(new CustomEvent("todo:identity-asked"));
    if (problem) this.messages.show([problem]);
    this.input.focus();
  }

  submit() {
    this.messages.clear();
    const value = this.input.value.trim();
    let chosen;
    if (this.jwt) {
      const user = tokenSubject(value);
      if (!user) {
        this.invalid("This is not a token this page can read: paste the whole JWT (three parts separated by dots) whose sub is a user id.");
        return;
      }
      localStorage.setItem(TOKEN_KEY, value);
      chosen = { user, token: value };
    } else {
      if (!USER_ID.test(value)) {
        this.invalid("User id: use 1 to 64 letters, digits, or the characters . _ @ - (no spaces).");
        return;
      }
      localStorage.setItem(USER_KEY, value);
      chosen = { user: value, token: "" };
    }
    this.use(chosen, true);
  }

  invalid(message) {
    this.messages.show([message]);
    this.messages.mark(this.input);
    this.input.focus();
  }

  use(chosen, fromForm = false) {
    this.view.hidden = true;
    this.form.hidden = true;
    this.whoText.textContent = `User: ${chosen.user}`;
    this.who.hidden = false;
    this.onChosen(chosen, fromForm);
  }

  // A 401 or 403 from the API: say so, and ask again.
  refused(error) {
    if (!this.jwt) return;
    const problem = error.status === 401
      ? `The token was not accepted (${error.message}). Paste a new one.`
      : `This token is not allowed to see these tasks (${error.message}).`;
    this.ask(problem);
  }
}
