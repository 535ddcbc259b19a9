// The trash: deleted tasks, newest deletion first, to restore or delete for good.

import { formatDate } from "./dates.js";
import { element } from "./list.js";
import { Pages } from "./pages.js";

function trashItem(task) {
  const titleId = `trash-title-${task.id}`;
  return element("li", { class: "task trashed", "data-id": task.id },
    element("div", { class: "body" },
      element("span", { class: "title", id: titleId }, task.title),
      element("div", { class: "meta" },
        element("span", {}, "Deleted", element("time", { datetime: task.deleted_at }, formatDate(task.deleted_at))))),
    element("div", { class: "actions" },
      element("button", { type: "button", class: "ghost", "data-action": "restore", "aria-describedby": titleId }, "Restore"),
      element("button", { type: "button", class: "danger-ghost", "data-action": "purge", "aria-describedby": titleId }, "Delete forever")));
}

export class Trash {
  constructor(api, messages, onRestored) {
    this.api = api;
    this.messages = messages;
    this.onRestored = onRestored;
    this.list = document.getElementById("trash-list");
    this.empty = document.getElementById("trash-empty");
    this.more = document.getElementById("trash-more");
    this.emptyButton = document.getElementById("empty-trash");
    this.confirm = document.getElementById("empty-confirm");
    this.pages = new Pages({
      more: this.more,
      end: document.getElementById("trash-end"),
      fetchPage: (cursor) => this.api.trash(cursor),
      take: (tasks) => {
        for (const task of tasks) if (!this.item(task.id)) this.list.append(trashItem(task));
      },
      fail: (error) => this.messages.fail(error),
      after: () => this.update(),
    });
    this.list.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const id = button.closest("li").dataset.id;
      if (button.dataset.action === "restore") this.restore(id);
      else this.purge(id);
    });
    this.emptyButton.addEventListener("click", () => {
      this.confirm.hidden = false;
      this.emptyButton.hidden = true;
      document.getElementById("empty-keep").focus();
    });
    document.getElementById("empty-keep").addEventListener("click", () => this.closeConfirm());
    document.getElementById("empty-yes").addEventListener("click", () => this.emptyAll());
  }

  closeConfirm() {
    this.confirm.hidden = true;
    this.emptyButton.hidden = false;
    this.emptyButton.focus();
  }

  async reload() {
    this.pages.reset();
    this.list.replaceChildren();
    this.update();
    await this.pages.page(null);
  }

  update() {
    const none = this.pages.loaded && !this.list.childElementCount;
    this.empty.hidden = !none;
    this.emptyButton.disabled = none;
    this.more.hidden = !this.pages.cursor;
  }

  item(id) {
    return this.list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
  }

  // Gone from the trash (restored or purged, here or elsewhere): focus moves to a neighbour.
  drop(id) {
    const li = this.item(id);
    if (!li) return;
    const next = li.nextElementSibling || li.previousElementSibling;
    const hadFocus = li.contains(document.activeElement);
    li.remove();
    this.update();
    if (hadFocus) (next ? next.querySelector("button") : this.emptyButton).focus();
  }

  async restore(id) {
    this.messages.clear();
    try {
      const task = await this.api.restore(id);
      this.drop(id);
      this.onRestored(task);
      this.messages.say("Task restored");
    } catch (error) {
      if (error.status === 404) this.drop(id);
      this.messages.fail(error);
    }
  }

  async purge(id) {
    this.messages.clear();
    try {
      await this.api.purge(id);
      this.drop(id);
      this.messages.say("Task deleted forever");
    } catch (error) {
      if (error.status === 404) this.drop(id);
      this.messages.fail(error);
    }
  }

  async emptyAll() {
    this.messages.clear();
    try {
      const result = await this.api.emptyTrash();
      this.confirm.hidden = true;
      this.emptyButton.hidden = false;
      this.pages.reset(true);
      this.list.replaceChildren();
      this.update();
      this.messages.say(result.purged === 1 ? "Trash emptied: 1 task deleted forever" : `Trash emptied: ${result.purged} tasks deleted forever`);
      document.getElementById("link-trash").focus();
    } catch (error) {
      this.messages.fail(error);
    }
  }
}
