// Changing one task: complete, edit inline, delete with Undo. Every write carries
// If-Match with the tag of the version shown; a 412 shows the newer version instead.

import { ApiError } from "./api.js";
import { browserZone, fromLocalInput, toLocalInput } from "./dates.js";
import { element, splitTags, taskContent } from "./list.js";

const CONFLICT = "This task was changed elsewhere: showing the latest version. Your change was not applied.";
const PRIORITIES = [["none", "None"], ["low", "Low"], ["medium", "Medium"], ["high", "High"]];
const REPEATS = [["", "Never"], ["daily", "Daily"], ["weekly", "Weekly"], ["monthly", "Monthly"], ["yearly", "Yearly"]];

function field(label, control) {
  control.id = `edit-${control.name}-${Math.random().toString(36).slice(2, 8)}`;
  return element("div", { class: "field" }, element("label", { for: control.id }, label), control);
}

function select(name, options, chosen) {
  return element("select", { name }, ...options.map(([value, label]) => element("option", { value, selected: value === chosen }, label)));
}

function fillZones() {
  const list = document.getElementById("time-zones");
  if (list.childElementCount || !Intl.supportedValuesOf) return;
  list.append(...Intl.supportedValuesOf("timeZone").map((zone) => element("option", { value: zone })));
}

// What the form's inputs mean as task fields.
function fieldsOf(form) {
  const value = (name) => form.elements.namedItem(name).value;
  return {
    title: value("title").trim(),
    description: value("description") || null,
    due_at: fromLocalInput(value("due_at")),
    priority: value("priority"),
    tags: splitTags(value("tags")),
    recurrence: value("recurrence") || null,
    time_zone: value("time_zone").trim(),
  };
}

export class Editor {
  constructor(api, list, messages) {
    this.api = api;
    this.list = list;
    this.messages = messages;
    list.list.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const id = button.closest("li").dataset.id;
      if (button.dataset.action === "edit") this.edit(id);
      else if (button.dataset.action === "delete") this.remove(id);
    });
    list.list.addEventListener("change", (event) => {
      if (event.target.dataset.action === "complete") this.complete(event.target.closest("li").dataset.id, event.target);
    });
  }

  // The tag of the version shown; without one, the current version is fetched, and if it
  // is not the one shown the person sees it and the conflict, and null is returned.
  async currentTag(shown) {
    const known = this.api.tagFor(shown);
    if (known) return known;
    const current = await this.api.task(shown.id);
    if (current.updated_at !== shown.updated_at) {
      this.conflict(current);
      return null;
    }
    return this.api.tagFor(current);
  }

  conflict(current) {
    this.list.editing.delete(current.id);
    this.list.upsert(current);
    this.messages.show([CONFLICT]);
  }

  async failed(error, id, form = null) {
    if (error instanceof ApiError && error.status === 412) {
      try {
        this.conflict(await this.api.task(id));
      } catch (again) {
        this.messages.fail(again);
      }
      return;
    }
    if (error instanceof ApiError && error.status === 404) {
      this.list.remove(id);
    }
    this.messages.fail(error, form);
  }

  async complete(id, checkbox) {
    const shown = this.list.tasks.get(id);
    if (!shown) return;
    this.messages.clear();
    checkbox.disabled = true;
    try {
      const etag = await this.currentTag(shown);
      if (!etag) return;
      const task = await this.api.patch(id, { completed: checkbox.checked }, etag);
      this.list.upsert(task);
      this.messages.say(task.completed ? "Task completed" : "Task marked as not completed");
      if (task.next_occurrence_id) {
        // The next occurrence shows now, not when its event arrives.
        this.list.upsert(await this.api.task(task.next_occurrence_id));
      }
    } catch (error) {
      await this.failed(error, id);
    } finally {
      const li = this.list.item(id);
      const box = li && li.querySelector("input.check");
      if (box) {
        box.disabled = false;
        box.checked = this.list.tasks.get(id).completed;
        if (box !== checkbox) box.focus();
      }
    }
  }

  async remove(id) {
    const shown = this.list.tasks.get(id);
    if (!shown) return;
    this.messages.clear();
    const li = this.list.item(id);
    const next = li.nextElementSibling || li.previousElementSibling;
    try {
      const etag = await this.currentTag(shown);
      if (!etag) return;
      await this.api.remove(id, etag);
      this.list.remove(id);
      const focus = next && next.querySelector("button[data-action=delete]");
      (focus || document.getElementById("new-title")).focus();
      this.messages.say("Task deleted", { label: "Undo", run: () => this.undo(id) });
    } catch (error) {
      await this.failed(error, id);
    }
  }

  async undo(id) {
    this.messages.clear();
    try {
      const task = await this.api.restore(id);
      this.list.upsert(task);
      this.messages.say("Task restored");
      const button = this.list.item(id)?.querySelector("button[data-action=edit]");
      if (button) button.focus();
    } catch (error) {
      this.messages.fail(error);
    }
  }

  async edit(id) {
    const shown = this.list.tasks.get(id);
    if (!shown) return;
    this.messages.clear();
    let current;
    try {
      current = await this.api.task(id);
    } catch (error) {
      await this.failed(error, id);
      return;
    }
    if (current.updated_at !== shown.updated_at) {
      this.conflict(current);
      return;
    }
    this.open(current);
  }

  open(task) {
    fillZones();
    const li = this.list.item(task.id);
    if (!li) return;
    this.list.editing.add(task.id);
    const form = element("form", { class: "edit", "aria-label": "Edit task", novalidate: true },
      element("div", { class: "row" },
        field("Title", element("input", { name: "title", required: true, maxlength: "200", autocomplete: "off" })),
        field("Description", element("input", { name: "description", maxlength: "1000", autocomplete: "off" }))),
      element("div", { class: "row" },
        field("Due", element("input", { name: "due_at", type: "datetime-local" })),
        field("Priority", select("priority", PRIORITIES, task.priority)),
        field("Tags", element("input", { name: "tags", autocomplete: "off" }))),
      element("div", { class: "row" },
        field("Repeats", select("recurrence", REPEATS, task.recurrence || "")),
        field("Time zone", element("input", { name: "time_zone", list: "time-zones", autocomplete: "off", spellcheck: "false" }))),
      element("div", { class: "buttons" },
        element("button", { type: "submit", class: "primary" }, "Save"),
        element("button", { type: "button", class: "ghost", "data-role": "cancel" }, "Cancel")));
    const inputs = form.elements;
    inputs.namedItem("title").value = task.title;
    inputs.namedItem("description").value = task.description || "";
    inputs.namedItem("due_at").value = toLocalInput(task.due_at);
    inputs.namedItem("tags").value = task.tags.join(", ");
    inputs.namedItem("time_zone").value = task.time_zone;
    const before = fieldsOf(form);
    const etag = this.api.tagFor(task); // edit() has just fetched this version
    const dueBefore = inputs.namedItem("due_at").value;
    inputs.namedItem("recurrence").addEventListener("change", (event) => {
      const zone = inputs.namedItem("time_zone");
      if (event.target.value && task.time_zone === "UTC" && zone.value === "UTC") zone.value = browserZone();
    });
    const close = (latest) => {
      this.messages.clear();
      this.list.editing.delete(task.id);
      li.replaceChildren(...taskContent(latest));
      li.classList.toggle("done", latest.completed);
      li.querySelector("button[data-action=edit]").focus();
    };
    form.querySelector("[data-role=cancel]").addEventListener("click", () => close(this.list.tasks.get(task.id) || task));
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        close(this.list.tasks.get(task.id) || task);
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      this.messages.clear();
      const after = fieldsOf(form);
      const patch = {};
      for (const [name, value] of Object.entries(after)) {
        // An unchanged due input is not sent: minutes would round away its seconds.
        if (name === "due_at" && inputs.namedItem("due_at").value === dueBefore) continue;
        if (JSON.stringify(value) !== JSON.stringify(before[name])) patch[name] = value;
      }
      if (!Object.keys(patch).length) {
        close(task);
        return;
      }
      const save = form.querySelector("button[type=submit]");
      save.disabled = true;
      try {
        const written = await this.api.patch(task.id, patch, etag);
        this.list.tasks.set(written.id, written);
        close(written);
        this.list.upsert(written);
        this.messages.say("Task saved");
      } catch (error) {
        save.disabled = false;
        if (error instanceof ApiError && error.status === 412) {
          this.list.editing.delete(task.id);
          await this.failed(error, task.id);
          this.list.item(task.id)?.querySelector("button[data-action=edit]")?.focus();
        } else {
          await this.failed(error, task.id, form);
        }
      }
    });
    li.replaceChildren(form);
    inputs.namedItem("title").focus();
  }
}
