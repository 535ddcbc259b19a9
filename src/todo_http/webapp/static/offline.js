// The offline banner: shown when a request gets no answer (or a 503), when the browser
// says it went offline; it probes the API until it answers, then hides and resyncs.

import { ApiError, NetworkError } from "./api.js";

const FIRST_PAUSE_MS = 2000;
const LONGEST_PAUSE_MS = 10000;

export class Offline {
  // probe() resolves when the API answers; back() runs once it does.
  constructor(probe, back) {
    this.banner = document.getElementById("offline");
    this.probe = probe;
    this.back = back;
    this.timer = null;
    this.pause = FIRST_PAUSE_MS;
    window.addEventListener("offline", () => this.show());
    window.addEventListener("online", () => this.retrySoon());
  }

  get shown() {
    return !this.banner.hidden;
  }

  show() {
    if (this.shown) return;
    this.banner.hidden = false;
    this.pause = FIRST_PAUSE_MS;
    this.schedule();
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.check(), this.pause);
  }

  retrySoon() {
    if (!this.shown) return;
    this.pause = FIRST_PAUSE_MS;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.check(), 100);
  }

  async check() {
    try {
      await this.probe();
    } catch (error) {
      const down = error instanceof NetworkError || (error instanceof ApiError && error.status === 503);
      if (down) {
        this.pause = Math.min(this.pause * 2, LONGEST_PAUSE_MS);
        this.schedule();
        return;
      }
      // Any other answer means the server is there; the resync reports what is wrong.
    }
    this.hide();
    this.back();
  }

  hide() {
    clearTimeout(this.timer);
    this.banner.hidden = true;
  }
}
