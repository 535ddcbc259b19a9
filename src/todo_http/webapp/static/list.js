// The task list: the filter form as the API's query, pages by cursor (endless
// scrolling), and live changes merged in by id, in the listing's own order.

import { formatDate, fromLocalInput } from "./dates.js";
import { Pages } from "./pages.js";

const PAGE = "50";
const SEARCH_PAUSE_MS = 300;
const RANK = { none: 0, low: 1, medium: 2, high: 3 };
const PRIORITY_TEXT = { high: "High priority", medium: "Medium priority", low: "Low priority" };
const REPEATS = { daily: "Repeats daily", weekly: "Repeats weekly", monthly: "Repeats monthly", yearly: "Repeats yearly" };

export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  // Spaces between children: the item's text reads "Title Description…", not run together.
  const present = children.filter((child) => child !== null && child !== undefined);
  present.forEach((child, index) => node.append(...(index ? [" ", child] : [child])));
  return node;
}

export const splitTags = (text) => text.split(",").map((tag) => tag.trim().toLowerCase()).filter(Boolean);

export function filtersOf(form) {
  const data = new FormData(form);
  return {
    q: (data.get("q") || "").trim(),
    completed: data.get("completed") || "",
    priority: data.getAll("priority"),
    tag: [...new Set(splitTags(data.get("tag") || ""))],
    due_min: fromLocalInput(data.get("due_min")),
    due_max: fromLocalInput(data.get("due_max")),
    sort: data.get("sort") || "-created_at",
  };
}

export function queryOf(filters, cursor) {
  const query = new URLSearchParams({ limit: PAGE, sort: filters.sort });
  if (filters.q) query.set("q", filters.q);
  if (filters.completed) query.set("completed", filters.completed);
  if (filters.priority.length) query.set("priority", filters.priority.join(","));
  if (filters.tag.length) query.set("tag", filters.tag.join(","));
  if (filters.due_min) query.set("due_min", filters.due_min);
  if (filters.due_max) query.set("due_max", filters.due_max);
  if (cursor) query.set("cursor", cursor);
  return query;
}

// The server's filters, applied to one task (docs/api.md, Listing).
export function matches(task, f) {
  if (f.completed && String(task.completed) !== f.completed) return false;
  if (f.q) {
    const q = f.q.toLowerCase();
    if (!task.title.toLowerCase().includes(q) && !(task.description || "").toLowerCase().includes(q)) return false;
  }
  if (f.priority.length && !f.priority.includes(task.priority)) return false;
  if (f.tag.some((tag) => !task.tags.includes(tag))) return false;
  if (f.due_min || f.due_max) {
    if (!task.due_at) return false;
    const due = Date.parse(task.due_at);
    if (f.due_min && due < Date.parse(f.due_min)) return false;
    if (f.due_max && due >= Date.parse(f.due_max)) return false;
  }
  return true;
}

// The server's order: the sort key, then id, both in the sort's direction; tasks
// without a due date last in both due_at directions.
export function compare(a, b, sort) {
  const descending = sort.startsWith("-");
  const field = sort.replace(/^-/, "");
  const sign = descending ? -1 : 1;
  if (field === "due_at" && !a.due_at !== !b.due_at) return a.due_at ? -1 : 1;
  let x = a[field];
  let y = b[field];
  if (field === "priority") [x, y] = [RANK[x], RANK[y]];
  else if (field === "due_at" && x) [x, y] = [Date.parse(x), Date.parse(y)];
  if (x < y) return -sign;
  if (x > y) return sign;
  return a.id < b.id ? -sign : a.id > b.id ? sign : 0;
}

export function taskContent(task) {
  const titleId = `task-title-${task.id}`;
  const meta = [];
  if (task.due_at) {
    const late = !task.completed && Date.parse(task.due_at) < Date.now();
    meta.push(element("time", { datetime: task.due_at, class: late ? "due late" : "due" }, formatDate(task.due_at)));
  }
  if (PRIORITY_TEXT[task.priority]) {
    meta.push(element("span", { class: `priority ${task.priority}` }, PRIORITY_TEXT[task.priority]));
  }
  if (task.recurrence) meta.push(element("span", { class: "repeat" }, REPEATS[task.recurrence]));
  for (const tag of task.tags) meta.push(element("span", { class: "tag" }, `#${tag}`));
  return [
    element("input", {
      type: "checkbox", class: "check", "aria-label": "Completed", "aria-describedby": titleId,
      "data-action": "complete", checked: task.completed,
    }),
    element("div", { class: "body" },
      element("span", { class: "title", id: titleId }, task.title),
      task.description ? element("p", { class: "description" }, task.description) : null,
      meta.length ? element("div", { class: "meta" }, ...meta) : null),
    element("div", { class: "actions" },
      element("button", { type: "button", class: "ghost", "data-action": "edit", "aria-describedby": titleId }, "Edit"),
      element("button", { type: "button", class: "ghost", "data-action": "delete", "aria-describedby": titleId }, "Delete")),
  ];
}

export class TaskList {
  constructor(api, messages) {
    this.api = api;
    this.messages = messages;
    this.form = document.getElementById("filters");
    this.list = document.getElementById("task-list");
    this.empty = document.getElementById("tasks-empty");
    this.more = document.getElementById("tasks-more");
    this.tasks = new Map();
    this.editing = new Set(); // ids whose item shows the edit form: not redrawn under it
    this.pages = new Pages({
      more: this.more,
      end: document.getElementById("tasks-end"),
      fetchPage: (cursor) => this.api.list(queryOf(this.filters, cursor)),
      take: (tasks) => tasks.forEach((task) => this.place(task, true)),
      fail: (error) => this.messages.fail(error),
      after: () => this.update(),
    });
    this.filters = filtersOf(this.form);
    // The less used filters start folded on a phone, so the list shows on the first screen.
    this.details = document.getElementById("more-filters");
    this.details.open = matchMedia("(min-width: 700px)").matches;
    this.count = document.getElementById("filter-count");
    let pause = null;
    this.form.addEventListener("input", (event) => {
      if (event.target.name !== "q") return;
      clearTimeout(pause);
      pause = setTimeout(() => this.refilter(), SEARCH_PAUSE_MS);
    });
    this.form.addEventListener("change", (event) => {
      if (event.target.name !== "q") this.refilter();
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(pause);
      this.refilter();
    });
  }

  refilter() {
    const next = filtersOf(this.form);
    if (JSON.stringify(next) === JSON.stringify(this.filters)) return;
    this.filters = next;
    const folded = [next.priority.length, next.tag.length, next.due_min, next.due_max].filter(Boolean).length;
    this.count.textContent = folded ? `${folded} on` : "";
    this.reload();
  }

  clear() {
    this.pages.reset();
    this.tasks.clear();
    this.editing.clear();
    this.list.replaceChildren();
    this.update();
  }

  async reload() {
    this.clear();
    await this.pages.page(null);
  }

  update() {
    this.empty.hidden = !this.pages.loaded || this.tasks.size > 0;
    this.more.hidden = !this.pages.cursor;
  }

  item(id) {
    return this.list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
  }

  draw(task) {
    const li = this.item(task.id);
    if (li && !this.editing.has(task.id)) {
      // A redraw under the keyboard focus keeps it on the same control.
      const focused = li.contains(document.activeElement) ? document.activeElement.dataset.action : null;
      li.classList.toggle("done", task.completed);
      li.replaceChildren(...taskContent(task));
      if (focused) li.querySelector(`[data-action="${focused}"]`)?.focus();
    }
  }

  // A task from a page (appended) or from a change (at its sorted place among the
  // loaded ones; not at all if it sorts after them while more pages remain).
  place(task, appended = false) {
    if (this.tasks.has(task.id)) {
      this.tasks.set(task.id, task);
      this.draw(task);
      return;
    }
    let before = null;
    if (!appended) {
      before = [...this.list.children].find((li) => {
        const other = this.tasks.get(li.dataset.id);
        return other && compare(task, other, this.filters.sort) < 0;
      }) || null;
      if (!before && this.pages.cursor) return;
    }
    const li = element("li", { class: task.completed ? "task done" : "task", "data-id": task.id }, ...taskContent(task));
    this.tasks.set(task.id, task);
    this.list.insertBefore(li, before);
  }

  // A task as a write or the live feed reports it: kept, moved out or brought in.
  upsert(task) {
    if (matches(task, this.filters)) this.place(task);
    else this.remove(task.id);
    this.update();
  }

  remove(id) {
    const li = this.item(id);
    if (li) li.remove();
    this.tasks.delete(id);
    this.editing.delete(id);
    this.update();
  }
}
