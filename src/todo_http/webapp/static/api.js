// The API as the contract describes it (docs/api.md): the envelope, entity tags for
// If-Match, Idempotency-Key on creates, and failures told apart (network or HTTP).

export class ApiError extends Error {
  constructor(status, envelope) {
    const error = envelope && envelope.error;
    super((error && error.message) || `The server answered ${status}`);
    this.status = status;
    this.code = error ? error.code : "";
    this.details = (error && error.details) || [];
  }
}

// The request never got an answer: offline, server down, or the connection dropped.
export class NetworkError extends Error {
  constructor() {
    super("The server could not be reached");
  }
}

const RETRIES = 3;
const RETRY_PAUSE_MS = 500;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context; a server on a LAN address over http is not one.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class Api {
  // hooks: unreachable() on a network failure or a 503, reachable() on any answer
  // below 500, refused(error) on 401/403.
  constructor(base, hooks) {
    this.base = base;
    this.hooks = hooks;
    this.user = "";
    this.token = "";
    // id -> {etag, updatedAt}: a tag is only used for the version it came with.
    this.tags = new Map();
  }

  signIn(user, token) {
    this.user = user;
    this.token = token || "";
    this.tags.clear();
  }

  path(rest) {
    return `${this.base}/${encodeURIComponent(this.user)}${rest}`;
  }

  eventsUrl(since) {
    const query = new URLSearchParams({ since });
    if (this.token) query.set("access_token", this.token);
    return `${this.path("/events")}?${query}`;
  }

  async request(method, rest, { body, query, headers = {} } = {}) {
    const url = this.path(rest) + (query && `${query}` ? `?${query}` : "");
    const sent = { Accept: "application/json", ...headers };
    if (this.token) sent.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) sent["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {
        method,
        headers: sent,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch {
      this.hooks.unreachable();
      throw new NetworkError();
    }
    const envelope = await response.json().catch(() => null);
    if (response.status === 503) this.hooks.unreachable();
    else if (response.status < 500) this.hooks.reachable();
    if (!response.ok) {
      const error = new ApiError(response.status, envelope);
      if (response.status === 401 || response.status === 403) this.hooks.refused(error);
      throw error;
    }
    const etag = response.headers.get("ETag");
    const data = envelope && envelope.data;
    if (etag && data && data.id) this.tags.set(data.id, { etag, updatedAt: data.updated_at });
    return envelope;
  }

  // The entity tag of exactly this version of the task, if a single-task answer gave it.
  tagFor(task) {
    const known = this.tags.get(task.id);
    return known && known.updatedAt === task.updated_at ? known.etag : null;
  }

  async task(id) {
    return (await this.request("GET", `/tasks/${id}`)).data;
  }

  list(params) {
    return this.request("GET", "/tasks", { query: params });
  }

  // One key per task the user means to create: a retry after a lost answer replays
  // the first create instead of making a second task.
  async create(fields, key) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return (await this.request("POST", "/tasks", { body: fields, headers: { "Idempotency-Key": key } })).data;
      } catch (error) {
        const again = error instanceof NetworkError || (error instanceof ApiError && error.status === 409);
        if (!again || attempt >= RETRIES) throw error;
        await sleep(error instanceof NetworkError ? RETRY_PAUSE_MS : 1000);
      }
    }
  }

  async patch(id, fields, etag) {
    return (await this.request("PATCH", `/tasks/${id}`, { body: fields, headers: { "If-Match": etag } })).data;
  }

  async remove(id, etag) {
    return (await this.request("DELETE", `/tasks/${id}`, { headers: { "If-Match": etag } })).data;
  }

  async restore(id) {
    return (await this.request("POST", `/trash/${id}/restore`)).data;
  }

  async purge(id) {
    return (await this.request("DELETE", `/trash/${id}`)).data;
  }

  async emptyTrash() {
    return (await this.request("DELETE", "/trash")).data;
  }

  trash(cursor) {
    const query = new URLSearchParams({ limit: "50" });
    if (cursor) query.set("cursor", cursor);
    return this.request("GET", "/trash", { query });
  }

  // A feed token for now, or the changes after one (used as the offline probe too).
  changes(since) {
    const query = new URLSearchParams({ limit: "1" });
    if (since) query.set("since", since);
    return this.request("GET", "/changes", { query });
  }
}
