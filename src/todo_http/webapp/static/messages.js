// The two live regions: #error (role=alert) for what went wrong, #status (role=status)
// for what was done, with an optional action button beside it (Undo).

import { ApiError, NetworkError } from "./api.js";

export class Messages {
  constructor() {
    this.error = document.getElementById("error");
    this.status = document.getElementById("status");
    this.action = document.getElementById("undo");
    this.marked = [];
    this.onAction = null;
    this.action.addEventListener("click", () => {
      const run = this.onAction;
      this.clearAction();
      if (run) run();
    });
  }

  say(text, action = null) {
    this.status.textContent = text;
    this.clearAction();
    if (action) {
      this.action.textContent = action.label;
      this.onAction = action.run;
      this.action.hidden = false;
    }
  }

  clearAction() {
    this.onAction = null;
    this.action.hidden = true;
  }

  // The envelope's message, then one line per detail; inputs of `form` named like a
  // detail's field are marked invalid.
  fail(error, form = null) {
    // A refused token has its own message, with the token form (identity.js).
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) return;
    this.clear();
    const lines = [];
    if (error instanceof NetworkError) {
      lines.push("The server could not be reached. Check your connection and try again.");
    } else if (error instanceof ApiError) {
      lines.push(error.message);
      for (const detail of error.details) {
        lines.push(`${detail.field}: ${detail.message}`);
        const input = form && form.elements.namedItem(detail.field);
        if (input && input.setAttribute) this.mark(input);
      }
    } else {
      lines.push(String(error.message || error));
    }
    this.show(lines);
    // The alert may be out of sight above a long list: the field at fault takes the focus.
    if (this.marked.length) this.marked[0].focus();
  }

  show(lines) {
    this.error.replaceChildren(...lines.map((line) => {
      const p = document.createElement("p");
      p.textContent = line;
      return p;
    }));
  }

  mark(input) {
    input.setAttribute("aria-invalid", "true");
    this.marked.push(input);
  }

  clear() {
    this.error.replaceChildren();
    for (const input of this.marked) input.removeAttribute("aria-invalid");
    this.marked = [];
  }
}
