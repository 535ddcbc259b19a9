// A listing read by cursor: "Load more" and endless scrolling (an observer on the
// end of the list). Each reset starts a new generation, so the answer to a page asked
// for before it lands nowhere.

export class Pages {
  // fetchPage(cursor) answers the API's envelope, take(items) shows its data,
  // fail(error) reports a refusal and after() redraws what depends on the state.
  constructor({ more, end, fetchPage, take, fail, after }) {
    Object.assign(this, { end, fetchPage, take, fail, after });
    this.cursor = null;
    this.generation = 0;
    this.loading = false;
    this.loaded = false;
    more.addEventListener("click", () => this.loadMore());
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) this.loadMore();
    });
    this.observer.observe(end);
  }

  // Forget every page; ``loaded`` says whether the (now empty) listing counts as read.
  reset(loaded = false) {
    this.generation += 1;
    this.cursor = null;
    this.loaded = loaded;
    this.loading = false;
  }

  async loadMore() {
    if (this.cursor && !this.loading) await this.page(this.cursor);
  }

  async page(cursor) {
    const generation = this.generation;
    this.loading = true;
    try {
      const answer = await this.fetchPage(cursor);
      if (generation !== this.generation) return;
      this.take(answer.data);
      this.cursor = answer.meta.next_cursor;
      this.loaded = true;
    } catch (error) {
      if (generation === this.generation) this.fail(error);
    } finally {
      if (generation === this.generation) {
        this.loading = false;
        this.after();
        // Still in view after this page: observing again reports it, so the next loads.
        this.observer.unobserve(this.end);
        this.observer.observe(this.end);
      }
    }
  }
}
