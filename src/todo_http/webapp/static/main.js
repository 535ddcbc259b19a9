// Wiring: who is using the page, which view shows, the create form, and keeping the
// list in step with the server (feed token, then list, then live events).

import { Api, ApiError, newKey } from "./api.js";
import { Editor } from "./edit.js";
import { Identity } from "./identity.js";
import { TaskList } from "./list.js";
import { Live } from "./live.js";
import { Messages } from "./messages.js";
import { Offline } from "./offline.js";
import { Trash } from "./trash.js";

const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
const views = {
  tasks: document.getElementById("tasks-view"),
  trash: document.getElementById("trash-view"),
};
const nav = document.getElementById("views");
const STREAM_RETRY_MS = 5000;
const form = document.getElementById("new-task");
const titleInput = form.elements.namedItem("title");
const addButton = form.querySelector("button[type=submit]");

const messages = new Messages();
const hooks = {};
const api = new Api(meta("todo-api"), hooks);
const list = new TaskList(api, messages);
new Editor(api, list, messages);
const trash = new Trash(api, messages, (task) => list.upsert(task));
const live = new Live(api, applyChange, streamFailed);
const offline = new Offline(() => api.changes(), () => sync());
const identity = new Identity(meta("todo-auth"), messages, (chosen, fromForm) => {
  api.signIn(chosen.user, chosen.token);
  messages.clear();
  messages.say("");
  route();
  // The form's button just disappeared: the focus goes on to the view, not to the page's top.
  if (fromForm) (views.tasks.hidden ? document.getElementById("empty-trash") : titleInput).focus();
  sync();
});
hooks.unreachable = () => offline.show();
hooks.reachable = () => offline.retrySoon();
hooks.refused = (error) => identity.refused(error);

let signedIn = false;
let trashPause = null;

function current() {
  return location.hash === "#/trash" ? "trash" : "tasks";
}

function route() {
  signedIn = true;
  nav.hidden = false;
  const shown = current();
  for (const [name, view] of Object.entries(views)) view.hidden = name !== shown;
  for (const link of nav.querySelectorAll("a")) {
    if (link.hash === `#/${shown}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (shown === "trash") trash.reload();
}

// Take a feed token first, then read the list: a write in between arrives as an event.
async function sync() {
  live.close();
  try {
    const token = (await api.changes()).meta.next_since;
    await list.reload();
    live.open(token);
  } catch (error) {
    messages.fail(error);
  }
}

function applyChange(change) {
  if (change.type === "upsert") {
    list.upsert(change.task);
    trash.drop(change.task.id);
  } else {
    list.remove(change.id);
    if (!views.trash.hidden) {
      clearTimeout(trashPause);
      trashPause = setTimeout(() => trash.reload(), 300);
    }
  }
}

// The stream gave up: learn why from the feed. An expired or refused token means
// starting over; no answer means the offline banner, which resyncs when back.
async function streamFailed(token, closed) {
  try {
    await api.changes(token);
    if (closed) setTimeout(() => live.open(token), STREAM_RETRY_MS);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 410 || error.status === 422)) sync();
  }
}

document.addEventListener("todo:identity-asked", () => {
  signedIn = false;
  live.close();
  list.clear();
  nav.hidden = true;
  for (const view of Object.values(views)) view.hidden = true;
});
window.addEventListener("hashchange", () => {
  if (!signedIn) return;
  // What was said about the other view no longer applies.
  messages.clear();
  messages.say("");
  route();
});

let pending = null; // {key, text}: kept until the create succeeds or is refused
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (addButton.disabled) return;
  messages.clear();
  const body = { title: titleInput.value };
  const description = form.elements.namedItem("description").value;
  if (description) body.description = description;
  const text = JSON.stringify(body);
  if (!pending || pending.text !== text) pending = { key: newKey(), text };
  addButton.disabled = true;
  try {
    const task = await api.create(body, pending.key);
    pending = null;
    list.upsert(task);
    form.reset();
    titleInput.focus();
    messages.say("Task added");
  } catch (error) {
    if (error instanceof ApiError && error.status < 500) pending = null;
    messages.fail(error, form);
  } finally {
    addButton.disabled = false;
  }
});

identity.start();
