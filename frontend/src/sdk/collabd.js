// collabd.js: the collabd client SDK, one ES module with no runtime
// dependency, for browsers and Node >= 20 (pass a WebSocket constructor
// there, e.g. the ws package's, before Node 22). Its types are in
// frontend/sdk/collabd.d.ts; docs/embedding.md shows how to use it.
//
// It is built from the modules our own pages run (protocol.js, session.js,
// positions.js, store.js), not a copy of them: the reconnect and resume
// state machine, the OT client and the position conversion are the ones
// the browser suite tests every day.
//
//   const doc = await CollabDocument.open({ server, id, token, name });
//   doc.on("change", ({ op, author, local }) => ...);
//   doc.insert(0, "hello");
//   await doc.synced();

import { OTClient, apply as applySlow, cpLen, cpToUnit, unitToCp, transform, compose, transformIndex, moveRanges, diff, normalize, replay, isNoop, baseLen, targetLen } from "../protocol.js";
import { Session } from "../session.js";
import { AstralIndex, opFromChanges, changesFromOp } from "../positions.js";
import { Store, uuid } from "../store.js";

export { OTClient, cpLen, cpToUnit, unitToCp, transform, compose, transformIndex, moveRanges, diff, normalize, baseLen, AstralIndex, opFromChanges, changesFromOp, uuid };

export const PROTOCOL_VERSION = 2;

// CollabError is every error the SDK reports: code is the protocol's
// error code (not_found, unauthorized, bad_op, ...), or "closed",
// "network"; status the HTTP status, when there was one.
export class CollabError extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.name = "CollabError";
    this.code = code;
    if (status !== undefined) this.status = status;
  }
}

// apply returns text with op applied (positions in code points), in one
// pass over the text.
export function apply(text, op) {
  let out = "", u = 0;
  for (const c of op) {
    if (typeof c === "string") { out += c; continue; }
    const end = advance(text, u, Math.abs(c));
    if (c > 0) out += text.slice(u, end);
    u = end;
  }
  if (u !== text.length) throw new CollabError("bad_op", `op covers ${baseLen(op)} code points, the text has ${cpLen(text)}`);
  return out;
}

// advance returns the UTF-16 index n code points after index u of s.
// It counts with a native regular expression over a slice rather than
// unit by unit: a retain over a long text is in nearly every op.
const pairRe = /[\uD800-\uDBFF][\uDC00-\uDFFF]/g;
function advance(s, u, n) {
  while (n > 0) {
    const end = u + n; // n units hold at most n code points
    if (end > s.length) throw new CollabError("bad_op", "op is longer than the text");
    // A pair inside the n units is one code point fewer than units; a
    // pair cut by their end is one code point of two units.
    const chunk = s.slice(u, Math.min(end + 1, s.length));
    let pairs = 0, cut = 0;
    pairRe.lastIndex = 0;
    for (let m; (m = pairRe.exec(chunk));) { if (m.index === n - 1) cut = 1; else pairs++; }
    u = end + cut;
    n = pairs;
  }
  return u;
}

// httpBase turns a server URL (http(s) or ws(s), with or without a
// trailing slash) into its http(s) origin and path prefix.
function httpBase(server) {
  if (!server) {
    if (globalThis.location) return globalThis.location.origin;
    throw new TypeError("collabd: `server` is required outside a browser");
  }
  return String(server).replace(/\/+$/, "").replace(/^ws(s?):/, "http$1:");
}

// tokenExp returns a JWT's exp in milliseconds, or null when it has none
// or is not a JWT (the SDK never checks signatures: the server does).
export function tokenExp(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
    return typeof json.exp === "number" ? json.exp * 1000 : null;
  } catch { return null; }
}

// Emitter is the small event emitter of documents and viewers.
class Emitter {
  constructor() { this._on = new Map(); }
  on(event, fn) {
    if (!this._on.has(event)) this._on.set(event, new Set());
    this._on.get(event).add(fn);
    return () => this.off(event, fn);
  }
  off(event, fn) { this._on.get(event)?.delete(fn); }
  emit(event, ...args) {
    for (const fn of [...(this._on.get(event) || [])]) {
      try { fn(...args); } catch (err) { queueMicrotask(() => { throw err; }); }
    }
  }
}

// Tokens: a refresh is asked for this long before exp (at most a fifth of
// the token's life, at least a second), so that the session is moved to
// the fresh token before the server closes it.
const refreshMargin = (life) => Math.min(60_000, Math.max(1000, life / 5));

// TokenKeeper holds the current token and asks getToken for a fresh one
// before it expires, calling onFresh after each.
class TokenKeeper {
  constructor(token, getToken, onFresh) {
    Object.assign(this, { token: token || null, getToken, onFresh, timer: 0, inflight: null, stopped: false });
    this.schedule();
  }
  schedule() {
    clearTimeout(this.timer);
    const exp = this.token && tokenExp(this.token);
    if (!this.getToken || !exp || this.stopped) return;
    const life = exp - Date.now();
    this.timer = setTimeout(() => this.refresh(), Math.max(0, life - refreshMargin(life)));
  }
  // expired reports whether the token is past (or at the edge of) exp.
  expired() {
    const exp = this.token && tokenExp(this.token);
    return !!exp && exp - Date.now() < 1000;
  }
  refresh() {
    if (!this.getToken || this.stopped) return Promise.resolve(false);
    if (!this.inflight) {
      this.inflight = (async () => {
        try {
          const t = await this.getToken();
          if (this.stopped || !t) return false;
          this.token = t;
          this.schedule();
          this.onFresh();
          return true;
        } catch {
          // The application could not give one now: try again shortly.
          clearTimeout(this.timer);
          if (!this.stopped) this.timer = setTimeout(() => this.refresh(), 5000);
          return false;
        } finally { this.inflight = null; }
      })();
    }
    return this.inflight;
  }
  stop() { this.stopped = true; clearTimeout(this.timer); }
}

// request makes one HTTP call to the API, answering the parsed JSON body
// (or text, for text/plain) and throwing a CollabError for an error.
async function request(fetchFn, url, { method = "GET", token, body, headers = {}, text = false } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetchFn(url, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  } catch (err) {
    throw new CollabError("network", String(err && err.message || err));
  }
  if (!r.ok) {
    let code = "http_" + r.status, message = r.statusText, extra = {};
    try { const j = await r.json(); if (j && j.error) { code = j.error.code; message = j.error.message; extra = j; } } catch { /* not JSON */ }
    const e = new CollabError(code, message, r.status);
    if (extra.rev !== undefined) e.rev = extra.rev;
    throw e;
  }
  if (text) return { text: await r.text(), rev: Number(r.headers.get("X-Collab-Rev")) };
  return r.status === 204 ? null : r.json();
}

const enc = encodeURIComponent;

// ---- HTTP writes and history (docs/protocol.md) -------------------------------

// CollabAPI makes the plain HTTP calls of one server: creating documents,
// HTTP writes (POST /ops, PUT /text, revert) and history. From a browser
// page, the edit endpoints refuse a foreign Origin: call them from your
// backend (Node) or a page the collabd server serves.
export class CollabAPI {
  constructor({ server, token, fetch: f } = {}) {
    this.server = httpBase(server);
    this.token = token || null;
    this._fetch = f || globalThis.fetch.bind(globalThis);
  }
  _req(path, o = {}) { return request(this._fetch, this.server + path, { token: this.token, ...o }); }
  create(text) { return this._req("/api/docs", { method: "POST", body: text === undefined ? {} : { text } }); }
  get(id, { rev, at } = {}) {
    const q = rev !== undefined ? `?rev=${rev}` : at ? `?at=${enc(at instanceof Date ? at.toISOString() : at)}` : "";
    return this._req(`/api/docs/${enc(id)}${q}`);
  }
  ops(id, from = 0) { return this._req(`/api/docs/${enc(id)}/ops?from=${from}`); }
  revisions(id, { from = 0, limit, bucket } = {}) {
    let q = `?from=${from}`;
    if (limit) q += `&limit=${limit}`;
    if (bucket) q += `&bucket=${enc(bucket)}`;
    return this._req(`/api/docs/${enc(id)}/revisions${q}`);
  }
  postOp(id, { rev, op, name, strict, idempotencyKey }) {
    return this._req(`/api/docs/${enc(id)}/ops`, { method: "POST", body: clean({ rev, op, name, strict }), headers: idem(idempotencyKey) });
  }
  putText(id, { rev, text, name, strict, idempotencyKey }) {
    return this._req(`/api/docs/${enc(id)}/text`, { method: "PUT", body: clean({ rev, text, name, strict }), headers: idem(idempotencyKey) });
  }
  revert(id, run, name) { return this._req(`/api/docs/${enc(id)}/revert`, { method: "POST", body: clean({ run, name }) }); }
  restore(id, rev) { return this._req(`/api/docs/${enc(id)}/restore`, { method: "POST", body: { rev } }); }
}

function clean(o) {
  const out = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null) out[k] = v;
  return out;
}
const idem = (k) => (k ? { "Idempotency-Key": k } : {});

// ---- persistence ------------------------------------------------------------

// indexedDBPersistence keeps a document's unsent edits and session in
// IndexedDB (the editor page's store.js), so that a reload, a closed tab
// or a crash while offline loses nothing: the next open of the document
// resumes the same client and resends what the server never
// acknowledged. It needs the global indexedDB (in Node, for tests, the
// fake-indexeddb package's "fake-indexeddb/auto").
export function indexedDBPersistence({ snapshotAfter = 2000 } = {}) {
  let store = null, docId = null, logged = 0, idle = 0, state = null;
  const snapshot = () => {
    if (!store || !state) return;
    logged = 0;
    clearTimeout(idle);
    const s = state();
    if (s) store.snapshot(docId, s).catch(() => {});
  };
  return {
    async load(id, preferred) {
      store = await Store.open().catch(() => null);
      if (!store) return null;
      docId = id;
      const got = await store.adopt(id, preferred).catch(() => null);
      if (!got) { store = null; return null; }
      if (!got.record) return { clientId: got.clientId };
      try {
        const { client, op } = replay(got.record.snap.client, got.events);
        const text = op ? apply(got.record.snap.text, op) : got.record.snap.text;
        return { clientId: got.clientId, client, text, author: got.record.snap.author };
      } catch {
        return { clientId: got.clientId }; // a log we cannot replay: start afresh
      }
    },
    attach(getState) { state = getState; },
    record(ev) {
      if (!store) return;
      if (ev.k === "snap") { snapshot(); return; }
      logged++;
      store.append(ev).catch(() => {});
      clearTimeout(idle);
      if (logged >= 1000) snapshot();
      else idle = setTimeout(() => { if (logged) snapshot(); }, snapshotAfter);
    },
    flush() { if (logged) snapshot(); },
    forget() { clearTimeout(idle); return store ? store.forget().catch(() => {}) : Promise.resolve(); },
    close() { if (logged) snapshot(); clearTimeout(idle); },
  };
}

// ---- the editing document ---------------------------------------------------

// CollabDocument is one editor's live copy of a document: edits apply
// locally at once and reach the server in order, ops of others arrive as
// "change" events, and a dropped connection resumes without losing or
// repeating anything.
export class CollabDocument extends Emitter {
  // open connects and resolves once the document's text is here (or, with
  // persistence holding an earlier session, once it is restored and
  // resynced). It rejects with a CollabError when the server refuses
  // (not_found, unauthorized, ...).
  static async open(opts) {
    const doc = new CollabDocument(opts);
    await doc.load();
    await doc.connect();
    return doc;
  }

  constructor(o = {}) {
    super();
    if (!o.id) throw new TypeError("collabd: `id` (the document's edit id) is required");
    this.server = httpBase(o.server);
    this.id = o.id;
    this.name = o.name || "";
    this.clientId = o.clientId || null;
    this._WebSocket = o.WebSocket || globalThis.WebSocket;
    if (!this._WebSocket) throw new TypeError("collabd: no WebSocket here; pass one (in Node before 22: the ws package's)");
    this._fetch = o.fetch || globalThis.fetch.bind(globalThis);
    this._persist = o.persistence || null;
    this._tokens = new TokenKeeper(o.token, o.getToken, () => { if (this._live()) this._session.reconnect(true); });
    // The text is _text with _delta (every op since, composed) applied,
    // made on demand: an editor binding keeps its own text, and applying
    // each keystroke to a long string here would cost a scan of it per
    // keystroke. _len is the text's length in code points.
    this._text = "";
    this._delta = null;
    this._deltaIns = 0;
    this._len = 0;
    this._pending = 0;
    this._status = "connecting";
    this._waiters = [];
    this._failed = null;
    this._closed = false;
  }

  get text() {
    if (this._delta) { this._text = apply(this._text, this._delta); this._delta = null; this._deltaIns = 0; }
    return this._text;
  }
  get length() { return this._len; }

  _setText(text) { this._text = text; this._delta = null; this._deltaIns = 0; this._len = cpLen(text); }

  // _advance records op (on the current text) as applied, throwing before
  // anything changes when it does not fit the text.
  _advance(op) {
    const n = baseLen(op);
    if (n !== this._len) throw new CollabError("bad_op", `op covers ${n} code points, the text has ${this._len}`);
    this._len = targetLen(op);
    this._delta = this._delta ? compose(this._delta, op) : op;
    for (const c of op) if (typeof c === "string") this._deltaIns += c.length;
    // Composing costs what the delta holds: keep it small.
    if (this._delta.length > 256 || this._deltaIns > 4096) void this.text;
  }
  get rev() { return this._session?.client ? this._session.client.rev : 0; }
  get author() { return this._session?.author || null; }
  get token() { return this._tokens.token; }
  // pending is how many local edits the server has not acknowledged.
  get pending() { return this._pending; }
  // status: "connecting" | "live" | "offline" | "failed" | "closed".
  get status() { return this._status; }
  // peers are the other editors, their selections moved through every
  // edit since they were sent.
  get peers() {
    return [...(this._session?.peers.values() || [])].map((p) => ({ author: p.author, name: p.name, color: p.color, ranges: p.ranges }));
  }
  // comments are the comment threads (docs/comments.md), by id, their
  // ranges in code points of the local text, moved through every edit.
  get comments() { return this._session?.comments || new Map(); }
  // editable: the text is here (restored, or from a welcome) and the
  // document neither failed nor closed, so that edits may be made.
  get editable() { return !!this._session?.client && !this._failed && !this._closed; }
  get api() { return new CollabAPI({ server: this.server, token: this._tokens.token, fetch: this._fetch }); }

  _wsURL() {
    const u = `${this.server.replace(/^http/, "ws")}/api/docs/${enc(this.id)}/ws`;
    const t = this._tokens.token;
    return t ? `${u}?token=${enc(t)}` : u;
  }

  // load restores what the persistence adapter holds of this document
  // (its text with the unsent edits, the session to resume), without
  // connecting: a page shows and edits it offline at once, and connect()
  // resumes it. It resolves to whether there was such a state; without
  // one, the text arrives with the first welcome. open() calls it.
  load() {
    if (!this._loaded) this._loaded = this._load();
    return this._loaded;
  }

  async _load() {
    let client = null, author = null;
    if (this._persist) {
      const got = await this._persist.load(this.id, this.clientId);
      if (got) {
        this.clientId = got.clientId || this.clientId;
        if (got.client) { client = got.client; author = got.author || null; this._setText(got.text || ""); }
      }
      this._persist.attach?.(() => this._session?.client && {
        text: this.text, client: this._session.client.toJSON(), author: this._session.author, pending: this._session.client.pending(),
      });
    }
    if (!this.clientId) this.clientId = uuid();
    this._session = new Session({
      docId: this.id, clientId: this.clientId, name: this.name, client, author,
      WebSocket: this._WebSocket, wsURL: () => this._wsURL(), base: this.server,
      fetch: (url, init) => this._fetch(url, { ...init, headers: this._tokens.token ? { Authorization: `Bearer ${this._tokens.token}` } : {} }),
      cb: {
        onReset: (text) => {
          const op = diff(this.text, text);
          this._setText(text);
          if (!isNoop(op)) this.emit("change", { op, author: null, local: false, rev: this.rev, reset: true });
        },
        onRemote: (op, author, rev) => {
          this._advance(op);
          this.emit("change", { op, author: author || "", local: false, rev });
        },
        onPeers: () => this.emit("presence", this.peers),
        onComments: (threads, msg) => this.emit("comments", threads, msg || null),
        onStatus: (s, delay, why) => this._onStatus(s, why, delay),
        onWelcome: (w) => { this.viewId = w.viewId; this.color = w.color; this.emit("welcome", w); },
        onEvent: (ev) => { if (this._persist) this._persist.record(ev); },
        onPending: (n) => { this._pending = n; this.emit("pending", n); if (n === 0) this._settle(); },
        onConflict: () => this.emit("conflict"),
        onFatal: (code, msg) => this._fail(new CollabError(code, msg || code)),
        onUnauthorized: (status) => {
          if (status !== 401 || !this._tokens.getToken) return false;
          this._tokens.refresh();
          return true;
        },
      },
    });
    if (client) this._pending = client.pending();
    return !!client;
  }

  // connect starts the session (loading first, if load() was not called)
  // and resolves once it is live; it rejects with a CollabError when the
  // server refuses (not_found, unauthorized, ...). open() calls it.
  connect() {
    if (!this._connected) {
      this._connected = new Promise((resolve, reject) => { this._ready = { resolve, reject }; });
      this.load().then(() => { if (!this._closed) this._session.start(); }, (err) => this._fail(err instanceof CollabError ? err : new CollabError("network", String(err))));
    }
    return this._connected;
  }

  _onStatus(s, why, delay) {
    if (this._closed) return;
    this._status = s;
    // retryAt: when an offline session tries again (ms since the epoch).
    this.retryAt = s === "offline" ? Date.now() + (delay || 0) : 0;
    this.emit("status", s, why, delay || 0);
    if (s === "live" && this._ready) { this._ready.resolve(); this._ready = null; }
    // A session closed for an expired token (4401), or an upgrade refused
    // with 401, retries: with a fresh token, if the application gives one.
    if (s === "offline" && (this._session.lastError === "unauthorized" || this._tokens.expired())) {
      this._session.lastError = null;
      this._tokens.refresh();
    }
  }

  _fail(err) {
    this._failed = err;
    this._status = "failed";
    this.emit("status", "failed");
    this.emit("error", err);
    if (this._ready) { this._ready.reject(err); this._ready = null; }
    this._settle();
    this._tokens.stop();
  }

  // _settle resolves (or, after a failure, rejects) the synced() waiters.
  _settle() {
    if (this._pending !== 0 && !this._failed && !this._closed) return;
    const ws = this._waiters;
    this._waiters = [];
    for (const w of ws) {
      if (this._pending === 0) w.resolve();
      else w.reject(this._failed || new CollabError("closed", "document closed with unacknowledged edits"));
    }
  }

  // synced resolves when the server has acknowledged every local edit.
  synced() {
    if (this._pending === 0) return Promise.resolve();
    if (this._failed) return Promise.reject(this._failed);
    if (this._closed) return Promise.reject(new CollabError("closed", "document closed"));
    return new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
  }

  // applyOp applies a local op (code points, on the current text).
  applyOp(op) {
    if (this._closed || this._failed) throw this._failed || new CollabError("closed", "document closed");
    if (!this._session?.client) throw new CollabError("not_ready", "the document's text has not arrived yet");
    for (const c of op) {
      if (typeof c !== "string" && !Number.isInteger(c)) throw new CollabError("bad_op", `bad op component ${JSON.stringify(c)}`);
    }
    // Canonical, without the empty components the server refuses.
    op = normalize(op.filter((c) => c !== 0 && c !== ""));
    if (baseLen(op) !== this._len) throw new CollabError("bad_op", `op covers ${baseLen(op)} code points, the text has ${this._len}`);
    if (isNoop(op)) return;
    this._advance(op);
    this._session.edit(op);
    this.emit("change", { op, author: this.author, local: true, rev: this.rev });
  }

  // insert inserts text at code point pos.
  insert(pos, text) {
    const n = this._len;
    if (!(pos >= 0 && pos <= n) || !Number.isInteger(pos)) throw new RangeError(`insert at ${pos}: the text has ${n} code points`);
    if (text === "") return;
    this.applyOp([pos, String(text), n - pos]);
  }

  // delete deletes count code points from pos.
  delete(pos, count) {
    const n = this._len;
    if (!Number.isInteger(pos) || !Number.isInteger(count) || pos < 0 || count < 0 || pos + count > n) {
      throw new RangeError(`delete ${count} at ${pos}: the text has ${n} code points`);
    }
    if (count === 0) return;
    this.applyOp([pos, -count, n - pos - count]);
  }

  // replace makes the text text, with the smallest single edit.
  replace(text) { this.applyOp(diff(this.text, text)); }

  // setSelection tells the others this editor's selections, [anchor,
  // head] pairs in code points of the local text; sent once nothing is
  // unacknowledged.
  setSelection(ranges) {
    this._session?.cursor(ranges.map((r) => (Array.isArray(r) ? [r[0], r[1]] : [r.anchor, r.head])));
  }

  // setName changes the name the others see (a token's name wins).
  setName(name) {
    this.name = name;
    if (this._session) this._session.name = name;
    if (this._live()) this._session.reconnect(true);
  }

  // reconnect drops the connection and resumes at once (after the network
  // is back, say); offline() drops it until online().
  reconnect() { if (this._live()) this._session.online(); }
  offline() { if (this._live()) this._session.offline(); }

  // _live: the session exists and connect() started it.
  _live() { return !!(this._session && this._connected && !this._closed); }

  // setToken replaces the access token and moves the session to it.
  setToken(token) { this._tokens.token = token; this._tokens.schedule(); if (this._live()) this._session.reconnect(true); }

  // history helpers, on this document's id and token.
  ops(from = 0) { return this.api.ops(this.id, from); }
  revisions(o) { return this.api.revisions(this.id, o); }
  textAt(rev) { return this.api.get(this.id, { rev }).then((d) => d.text); }
  restore(rev) { return this.api.restore(this.id, rev); }

  close() {
    if (this._closed) return;
    this._closed = true;
    this._status = "closed";
    this._tokens.stop();
    this._session?.close();
    this._persist?.close?.();
    this._settle();
    if (this._ready) { this._ready.reject(new CollabError("closed", "closed before it opened")); this._ready = null; }
  }
}

// ---- viewers: the SSE feed ------------------------------------------------------

// CollabViewer follows a document read-only over Server-Sent Events, with
// only its view id (or an edit id, with `edit: true`). It reads the feed
// through fetch, so it runs in Node as in browsers, sends the token as a
// header, and resumes from the last revision after a drop.
export class CollabViewer extends Emitter {
  static async open(opts) {
    const v = new CollabViewer(opts);
    await v._first;
    return v;
  }

  constructor(o = {}) {
    super();
    if (!o.viewId && !o.id) throw new TypeError("collabd: `viewId` is required");
    this.server = httpBase(o.server);
    this._path = o.viewId ? `/api/view/${enc(o.viewId)}/events` : `/api/docs/${enc(o.id)}/events`;
    this._fetch = o.fetch || globalThis.fetch.bind(globalThis);
    this._tokens = new TokenKeeper(o.token, o.getToken, () => {});
    this._text = "";
    this._rev = -1;
    this._closed = false;
    this._retry = 0;
    this._first = new Promise((resolve, reject) => { this._ready = { resolve, reject }; });
    this._first.catch(() => {}); // a viewer made with new reports failures as "error" events
    this._run();
  }

  get text() { return this._text; }
  get rev() { return Math.max(this._rev, 0); }

  async _run() {
    while (!this._closed) {
      this._abort = new AbortController();
      let status = 0;
      try {
        const headers = { Accept: "text/event-stream" };
        if (this._tokens.token) headers.Authorization = `Bearer ${this._tokens.token}`;
        if (this._rev >= 0) headers["Last-Event-ID"] = String(this._rev);
        const r = await this._fetch(this.server + this._path, { headers, signal: this._abort.signal, cache: "no-store" });
        status = r.status;
        if (r.status === 401 && (await this._tokens.refresh())) continue;
        if (!r.ok) {
          let code = "http_" + r.status;
          try { code = (await r.json()).error.code; } catch { /* no body */ }
          if (r.status === 404 || r.status === 401 || r.status === 403) { this._fail(new CollabError(code, code, r.status)); return; }
          throw new Error(code);
        }
        this.emit("status", "live");
        await this._read(r.body);
      } catch (err) {
        if (this._closed) return;
        if (status === 0 && this._ready && this._retry > 3) { this._fail(new CollabError("network", String(err.message || err))); return; }
      }
      if (this._closed) return;
      this.emit("status", "offline");
      const delay = Math.min(10000, 250 * 2 ** this._retry++) * (0.5 + Math.random());
      await new Promise((r) => { this._timer = setTimeout(r, delay); });
    }
  }

  async _read(body) {
    const reader = body.getReader(), dec = new TextDecoder();
    let buf = "", event = "message", data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += dec.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        let line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line === "") {
          if (data.length) this._event(event, data.join("\n"));
          event = "message"; data = [];
        } else if (line.startsWith(":")) continue;
        else {
          const i = line.indexOf(":");
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
          if (field === "event") event = val;
          else if (field === "data") data.push(val);
        }
      }
    }
  }

  _event(type, data) {
    const d = JSON.parse(data);
    this._retry = 0;
    if (type === "snapshot") {
      const op = diff(this._text, d.text);
      this._text = d.text;
      this._rev = d.rev;
      this.emit("snapshot", { text: d.text, rev: d.rev });
      if (!isNoop(op)) this.emit("change", { op, rev: d.rev, reset: true });
    } else if (type === "op") {
      this._text = apply(this._text, d.op);
      this._rev = d.rev;
      this.emit("change", { op: d.op, rev: d.rev });
    }
    if (this._ready) { this._ready.resolve(); this._ready = null; }
  }

  _fail(err) {
    this._closed = true;
    this.emit("error", err);
    if (this._ready) { this._ready.reject(err); this._ready = null; }
  }

  close() {
    this._closed = true;
    this._tokens.stop();
    clearTimeout(this._timer);
    this._abort?.abort();
    if (this._ready) { this._ready.reject(new CollabError("closed", "closed before it opened")); this._ready = null; }
  }
}

// applySlow is the reference apply of protocol.js, kept for the tests.
export { applySlow as applyReference };
