// session.js: one editor's WebSocket session with a document (the wire
// protocol of docs/protocol.md, version 2; version 1's `client` fields are
// read where version 2 has `author`). It owns the OTClient and the peers'
// presence; the text lives in the editor, which the callbacks keep in step:
//
//   onReset(text)        replace the local text (a full welcome)
//   onRemote(op, author, rev)  apply op rev (code points), by author, to
//                        the local text (rebased over our pending edits)
//   onPeers(peers)       the other editors changed (Map author -> peer)
//   onComments(threads)  the comment threads changed (Map id -> thread,
//                        ranges in code points of the local text)
//   onStatus(state, msg) "connecting" | "live" | "offline" | "failed"
//   onWelcome(welcome)   a session became live
//   onEvent(ev)          a state change to persist: {k:"local"|"remote"|"ack"|"snap", ...}
//   onPending(n)         the count of unacknowledged local edits changed
//   onConflict()         unsent edits could not be rebased (the server no
//                        longer had their base); called before onReset
//   onFatal(code, msg)   the session cannot go on (unknown document, ...)
//   onUnauthorized(status)  optional: the upgrade was refused with 401;
//                        answers whether a retry may succeed (a fresh
//                        token is coming), else the session fails
//
// Nothing here touches the DOM, so Node's tests drive it with a fake
// WebSocket. Its one user is the SDK's CollabDocument (sdk/collabd.js),
// which the editor page and embedders run, in browsers and in Node, with
// the WebSocket constructor and server it is given.

import { OTClient, moveRanges } from "./protocol.js";

// Close codes after which reconnecting cannot help.
const fatalCodes = new Set([4400, 4403, 4404, 4409, 4413]);

export class Session {
  // opts: {docId, clientId, name, client (an OTClient restored from
  // storage, or null), cb, wsURL (a function giving the session's URL),
  // fetch (optional), base (the server's origin), WebSocket (a
  // constructor, default the global one)}
  constructor(opts) {
    Object.assign(this, { docId: opts.docId, clientId: opts.clientId, name: opts.name, cb: opts.cb });
    this.client = opts.client || null;
    this.author = opts.author || null; // our public author id, from welcome
    this.wsURL = opts.wsURL;
    this.fetch = opts.fetch || ((...a) => fetch(...a));
    this.base = opts.base || "";
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    this.peers = new Map();
    // Comment threads (docs/comments.md), asked for in the hello; their
    // ranges move with every op as the server moves them.
    this.comments = new Map();
    this.ws = null; this.retry = 0; this.closed = false; this.live = false;
    this.everLive = false; this.timer = null;
    this.wantCursor = null; this.sentCursor = "";
  }

  start() { this.connect(); }

  // reconnect opens a new connection now, superseding the old one (the
  // server closes it when the new hello arrives): how a rename is sent
  // without the page going offline.
  reconnect(quiet) {
    clearTimeout(this.timer);
    this.quiet = !!quiet && this.live;
    this.connect();
  }

  connect() {
    if (this.closed) return;
    const old = this.ws;
    const ws = new this.WebSocket(this.wsURL());
    this.ws = ws;
    this.live = false;
    if (old && old.readyState <= 1) try { old.close(1000); } catch { /* already closing */ }
    if (!this.quiet) this.cb.onStatus("connecting");
    let welcomed = false;
    // Failures also end in onclose; without a listener, Node's ws package
    // would throw its "error" event.
    ws.onerror = () => {};
    ws.onopen = () => {
      if (ws !== this.ws) return;
      const hello = { type: "hello", client: this.clientId, name: this.name, features: ["comments"] };
      if (this.client) hello.rev = this.client.rev;
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      let data;
      try { data = JSON.parse(ev.data); } catch { return; }
      for (const m of Array.isArray(data) ? data : [data]) {
        if (m.type === "welcome") welcomed = true;
        try { this.handle(m); } catch (err) {
          // Our state and the server's disagree: start over from the
          // server's text rather than send ops it would refuse.
          console.error("collabd: resyncing after", err);
          this.cb.onConflict();
          this.client = null;
          ws.close(1000);
          return;
        }
      }
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws || this.closed) return;
      this.live = false; this.quiet = false;
      if (fatalCodes.has(ev.code)) {
        this.closed = true;
        this.cb.onFatal(codeName(ev.code), this.lastError || ev.reason || "");
        return;
      }
      if (!welcomed && !this.everLive && ev.code === 1006) {
        // The upgrade itself failed: a plain HTTP 404 for an unknown
        // document looks just like a network error here, so ask.
        this.diagnose();
        return;
      }
      this.scheduleRetry(ev.code === 4429 ? 4 : 1);
    };
  }

  async diagnose() {
    let status = 0;
    try {
      const r = await this.fetch(`${this.base}/api/docs/${encodeURIComponent(this.docId)}/text`, { method: "HEAD", cache: "no-store" });
      status = r.status;
      if (r.ok) {
        // With sign-in on, a viewer reads the text but may not open an
        // editing session: the session's own route says 403.
        const w = await this.fetch(`${this.base}/api/docs/${encodeURIComponent(this.docId)}/ws`, { method: "HEAD", cache: "no-store" });
        if (w.status === 403) status = 403;
      }
    } catch { /* offline */ }
    if (this.closed) return;
    if (status === 404 || status === 403) {
      // 403: signed in, with too little access (docs/teams.md).
      this.closed = true;
      this.cb.onFatal(status === 404 ? "not_found" : "forbidden", "");
      return;
    }
    // A refused token: the SDK asks its application for a fresh one
    // (onUnauthorized answers whether it will); without one it is final.
    if (status === 401 && this.cb.onUnauthorized && !this.cb.onUnauthorized(status)) {
      this.closed = true;
      this.cb.onFatal("unauthorized", "");
      return;
    }
    this.scheduleRetry(1);
  }

  scheduleRetry(factor) {
    const delay = Math.min(10000, 250 * 2 ** this.retry++) * (0.5 + Math.random()) * factor;
    this.cb.onStatus("offline", delay);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  // online is called when the browser says the network is back.
  online() {
    if (!this.live && !this.closed) { this.retry = 0; this.reconnect(false); }
  }

  // offline is called when the browser says the network is gone: a
  // socket may linger half-open for minutes, so drop it now and keep
  // edits locally until online().
  offline() {
    if (this.ws && this.ws.readyState <= 1 && !this.closed) this.ws.close(1000);
  }

  send(msg) {
    if (msg && this.live && this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(msg));
  }

  handle(m) {
    switch (m.type) {
      case "welcome": return this.welcome(m);
      case "ack": {
        const next = this.client.ack(m.rev, m.seq);
        this.cb.onEvent({ k: "ack", rev: m.rev, seq: m.seq });
        this.cb.onPending(this.client.pending());
        this.send(next);
        if (!next) this.flushCursor();
        return;
      }
      case "op": return this.remote(m.rev, m.op, m.author);
      case "presence": {
        // The ranges are at the revision we are at; our local text also
        // holds our unacknowledged edits.
        const who = m.author ?? m.client;
        const out = this.client && this.client.outstanding();
        const ranges = out ? moveRanges(out, m.ranges || []) : (m.ranges || []);
        this.peers.set(who, { author: who, name: m.name, color: m.color, ranges });
        return this.cb.onPeers(this.peers);
      }
      case "leave":
        this.peers.delete(m.author ?? m.client);
        return this.cb.onPeers(this.peers);
      case "comments": {
        // Every thread, ranges at the revision we are at; our local text
        // also holds our unacknowledged edits.
        const out = this.client && this.client.outstanding();
        this.comments = new Map((m.comments || []).map((t) => [t.id, { ...t, range: out ? moveRanges(out, [t.range])[0] : t.range }]));
        return this.cb.onComments && this.cb.onComments(this.comments, null);
      }
      case "comment": {
        if (!m.comment) this.comments.delete(m.id);
        else {
          const out = this.client && this.client.outstanding();
          const t = m.comment;
          this.comments.set(t.id, { ...t, range: out ? moveRanges(out, [t.range])[0] : t.range });
        }
        return this.cb.onComments && this.cb.onComments(this.comments, m);
      }
      case "error":
        this.lastError = m.code;
        if (m.code === "shutting_down") this.cb.onStatus("offline", 0, "shutting_down");
        return;
    }
  }

  welcome(w) {
    this.retry = 0;
    if (w.author) this.author = w.author;
    const mine = (r) => (w.author ? r.author === w.author : r.client === this.clientId);
    if (w.text !== undefined || !this.client) {
      const c = this.client;
      // Edits we hold that the server has not applied cannot be rebased
      // without the ops since their base revision.
      if (c && (c.buffer || (c.inflight && w.lastSeq < c.inflight.seq))) this.cb.onConflict();
      this.client = new OTClient(w.rev, w.lastSeq);
      this.cb.onReset(w.text ?? "");
    } else {
      // Catch-up: our own ops among them are acks we missed.
      for (const r of w.ops || []) {
        const inf = this.client.inflight;
        if (inf && mine(r) && r.seq === inf.seq) {
          this.client.ack(r.rev, r.seq);
          this.cb.onEvent({ k: "ack", rev: r.rev, seq: r.seq });
        } else this.remote(r.rev, r.op, r.author);
      }
      const inf = this.client.inflight;
      if (inf && w.lastSeq >= inf.seq) throw new Error(`seq ${inf.seq} applied but not in the catch-up`);
    }
    // The peers' ranges are at the welcome's revision, which the catch-up
    // has brought us to; our local text also holds unacknowledged edits.
    const out = this.client.outstanding();
    this.peers = new Map((w.peers || []).map((p) => {
      const who = p.author ?? p.client;
      return [who, { author: who, name: p.name, color: p.color, ranges: out ? moveRanges(out, p.ranges || []) : (p.ranges || []) }];
    }));
    this.live = true; this.everLive = true; this.quiet = false;
    this.cb.onEvent({ k: "snap" });
    this.cb.onWelcome(w);
    this.cb.onPeers(this.peers);
    this.cb.onPending(this.client.pending());
    this.cb.onStatus("live");
    this.send(this.client.message());
    this.sentCursor = "";
    this.flushCursor();
  }

  remote(rev, op, author) {
    const local = this.client.applyServer(rev, op);
    this.cb.onEvent({ k: "remote", rev, op });
    for (const p of this.peers.values()) p.ranges = moveRanges(local, p.ranges);
    for (const t of this.comments.values()) t.range = moveRanges(local, [t.range])[0];
    this.cb.onRemote(local, author, rev);
  }

  // edit records a local change, already made to the local text, as op.
  edit(op) {
    if (!this.client) return;
    for (const p of this.peers.values()) p.ranges = p.ranges.map(([a, h]) => [moveLeft(op, a), moveLeft(op, h)]);
    // Comments move through our edits as the server will move them.
    for (const t of this.comments.values()) t.range = moveRanges(op, [t.range])[0];
    const msg = this.client.applyLocal(op);
    this.cb.onEvent({ k: "local", op });
    this.cb.onPending(this.client.pending());
    this.send(msg);
  }

  // cursor asks for ranges (code points on the local text) to be sent; they
  // go out once nothing is in flight, when the local text is the server's.
  cursor(ranges) {
    this.wantCursor = ranges;
    this.flushCursor();
  }

  flushCursor() {
    if (!this.wantCursor || !this.client || !this.client.synced() || !this.live) return;
    const s = JSON.stringify(this.wantCursor);
    if (s === this.sentCursor) return;
    this.sentCursor = s;
    this.send({ type: "cursor", rev: this.client.rev, ranges: this.wantCursor });
  }

  close() { this.closed = true; clearTimeout(this.timer); if (this.ws) this.ws.close(1000); }
}

// moveLeft maps another editor's caret through our own edit: text we
// insert at their caret goes after it, as theirs would on their screen.
export function moveLeft(op, pos) {
  let i = 0, out = 0; // positions reached in the old text and the new
  for (const c of op) {
    if (typeof c === "number" && c > 0) { if (i + c >= pos) return out + (pos - i); i += c; out += c; }
    else if (typeof c === "number") { if (i - c > pos) return out; i -= c; }
    else { if (i === pos) return out; out += Array.from(c).length; }
  }
  return out;
}

function codeName(code) {
  return { 4400: "bad_message", 4403: "forbidden", 4404: "not_found", 4409: "bad_op", 4413: "too_large" }[code] || String(code);
}
