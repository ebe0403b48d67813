// viewcomments.js: the comment threads on the view page (docs/comments.md,
// "Viewers"). A viewer may read the threads only when someone with edit
// access allowed it: GET /api/view/{viewId}/comments answers 200 then,
// 403 (or 404) otherwise. The SSE feed carries the text's ops and no
// comment events, so the threads are fetched again after each batch of
// ops, after a short pause and never more than once a second, and every
// 20 seconds while the page is shown (a comment can be made while
// nobody types). While the threads are not shared, one request after
// ops every 5 seconds at most, and one a minute otherwise, notice that
// they have been. Between fetches the ranges move through every op, as
// the editor moves them; an answer made at another revision than the
// text shown is moved through the ops since it, or held until the text
// reaches it.

import { moveRanges } from "./sdk/collabd.js";

const PAUSE = 300; // ms after an op before fetching
const MIN_GAP = 1000; // ms between two requests while shared
const SHUT_GAP = 5000; // ... while not shared
const IDLE = 20000; // ms between requests with no ops, while shared
const SHUT_IDLE = 60000; // ... while not shared
const MAX_LOG = 1000; // ops kept to move an older answer forward

export class ViewerComments {
  // opts: {viewId, pane: CommentPane (readOnly), show(bool): show or hide
  // the comments on the page, fetch?: the fetch function}
  constructor(opts) {
    this.viewId = opts.viewId;
    this.pane = opts.pane;
    this.show = opts.show;
    this.fetch = opts.fetch || ((...a) => fetch(...a));
    this.rev = -1; // the revision of the text shown
    this.log = []; // [{rev, op}] the last ops applied, oldest first
    this.threads = null; // Map id -> thread at this.rev; null: not shared
    this.pending = null; // {rev, threads} answered ahead of the text
    this.shared = false;
    this.last = -Infinity; // when the last request started
    this.due = 0; // when the timer fires (0: no timer)
    this.timer = 0;
    this.busy = false; // a request is in flight
    this.again = false; // ops arrived while it was
    this.stopped = false;
    this.onVisible = () => { if (!document.hidden) this.schedule(0); };
    document.addEventListener("visibilitychange", this.onVisible);
  }

  // snapshot: the text was replaced by revision rev.
  snapshot(rev) {
    this.rev = rev;
    this.log = [];
    const p = this.pending;
    if (p && p.rev === rev) { this.pending = null; this.adopt(p.threads); return; }
    if (p && p.rev < rev) this.pending = null; // its ops are not in the log
    this.schedule(0);
  }

  // change: op was applied to the text, leaving revision rev.
  change(op, rev) {
    if (this.threads) {
      for (const t of this.threads.values()) t.range = moveRanges(op, [t.range])[0];
      this.pane.changed();
    }
    this.log.push({ rev, op });
    if (this.log.length > MAX_LOG) this.log.splice(0, this.log.length - MAX_LOG);
    this.rev = rev;
    if (this.pending && this.pending.rev <= rev) {
      const p = this.pending;
      this.pending = null;
      if (p.rev === rev) this.adopt(p.threads);
      else this.forward(p.rev, p.threads);
    }
    this.schedule(PAUSE);
  }

  // schedule makes the next request no later than delay ms from now, and
  // no sooner than the minimum gap after the last one.
  schedule(delay) {
    if (this.stopped) return;
    const now = performance.now();
    const at = Math.max(now + delay, this.last + (this.shared ? MIN_GAP : SHUT_GAP));
    if (this.timer && this.due <= at) return;
    clearTimeout(this.timer);
    this.due = at;
    this.timer = setTimeout(() => { this.timer = 0; this.due = 0; this.request(); }, at - now);
  }

  async request() {
    if (this.busy) { this.again = true; return; }
    if (document.hidden) { this.idle(); return; } // visibilitychange brings it back
    this.busy = true;
    this.last = performance.now();
    try {
      const r = await this.fetch(`/api/view/${encodeURIComponent(this.viewId)}/comments`, { cache: "no-store" });
      if (r.ok) {
        const j = await r.json();
        this.shared = true;
        this.answer(j.rev, new Map((j.comments || []).map((t) => [t.id, t])));
      } else if (r.status === 403 || r.status === 404) {
        this.shared = false;
        this.threads = null;
        this.pending = null;
        this.show(false);
      }
      // Anything else (a restart, 429, 503): keep what is shown, ask later.
    } catch { /* offline: keep what is shown, ask later */ }
    this.busy = false;
    if (this.again) { this.again = false; this.schedule(PAUSE); } else this.idle();
  }

  idle() { this.schedule(this.shared ? IDLE : SHUT_IDLE); }

  // answer takes threads whose ranges are at revision rev.
  answer(rev, threads) {
    if (rev === this.rev) this.adopt(threads);
    else if (rev > this.rev) this.pending = { rev, threads };
    else this.forward(rev, threads);
  }

  // forward moves threads at revision rev (behind the text) through the
  // ops since, when they are all still in the log; else asks again.
  forward(rev, threads) {
    const ops = this.log.filter((e) => e.rev > rev);
    if (ops.length !== this.rev - rev) {
      if (this.busy) this.again = true; else this.schedule(0);
      return;
    }
    for (const { op } of ops) for (const t of threads.values()) t.range = moveRanges(op, [t.range])[0];
    this.adopt(threads);
  }

  adopt(threads) {
    this.threads = threads;
    this.show(true);
    this.pane.update(threads);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    document.removeEventListener("visibilitychange", this.onVisible);
  }
}
