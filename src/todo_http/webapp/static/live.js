// Live updates: the user's change feed through EventSource, from the token taken
// before the list was read, so no change between the two is missed.

export class Live {
  // apply(change) for each event; broken(lastToken, closed) when the stream fails,
  // closed when EventSource will not reconnect by itself.
  constructor(api, apply, broken) {
    this.api = api;
    this.apply = apply;
    this.broken = broken;
    this.source = null;
    this.token = null;
  }

  open(since) {
    this.close();
    this.token = since;
    const source = new EventSource(this.api.eventsUrl(since));
    for (const kind of ["upsert", "delete"]) {
      source.addEventListener(kind, (event) => {
        if (event.lastEventId) this.token = event.lastEventId;
        this.apply(JSON.parse(event.data));
      });
    }
    // EventSource reconnects by itself (with Last-Event-ID) after a dropped connection;
    // CLOSED means it gave up: an HTTP error (410, 422, 401...) or a server that is gone.
    source.addEventListener("error", () => {
      if (this.source !== source) return;
      const closed = source.readyState === EventSource.CLOSED;
      if (closed) this.source = null;
      this.broken(this.token, closed);
    });
    this.source = source;
  }

  close() {
    if (this.source) this.source.close();
    this.source = null;
  }
}
