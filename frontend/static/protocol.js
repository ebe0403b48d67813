// protocol.js: the collabd wire protocol in the browser, in one module
// (see docs/protocol.md). Text operations count Unicode code points, as the
// server does; JavaScript strings count UTF-16 units, so every position
// crossing the boundary goes through cpToUnit / unitToCp.

// ---- text operations ------------------------------------------------------

// An op is an array: positive n retains n code points, a string inserts it,
// negative n deletes n code points.

export function cpLen(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // A high surrogate followed by a low one is a single code point.
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) i++;
    }
    n++;
  }
  return n;
}

// cpToUnit returns the UTF-16 index of code point index cp in s.
export function cpToUnit(s, cp) {
  let i = 0;
  for (let n = 0; n < cp && i < s.length; n++) {
    const c = s.charCodeAt(i);
    i += c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
  }
  return i;
}

// unitToCp returns the code point index of UTF-16 index unit in s.
export function unitToCp(s, unit) {
  return cpLen(s.slice(0, unit));
}

export const isRetain = (c) => typeof c === "number" && c > 0;
export const isDelete = (c) => typeof c === "number" && c < 0;
export const isInsert = (c) => typeof c === "string";

export function baseLen(op) {
  let n = 0;
  for (const c of op) if (typeof c === "number") n += Math.abs(c);
  return n;
}

export function targetLen(op) {
  let n = 0;
  for (const c of op) n += isRetain(c) ? c : isInsert(c) ? cpLen(c) : 0;
  return n;
}

// Builder appends components in canonical form: neighbours of one kind
// merged, an insert placed before a delete it touches.
class Builder {
  constructor() { this.op = []; }
  retain(n) {
    if (n <= 0) return this;
    const last = this.op.length - 1;
    if (last >= 0 && isRetain(this.op[last])) this.op[last] += n;
    else this.op.push(n);
    return this;
  }
  insert(s) {
    if (s === "") return this;
    const op = this.op, last = op.length - 1;
    if (last >= 0 && isInsert(op[last])) op[last] += s;
    else if (last >= 0 && isDelete(op[last])) {
      if (last >= 1 && isInsert(op[last - 1])) op[last - 1] += s;
      else op.splice(last, 0, s);
    } else op.push(s);
    return this;
  }
  delete(n) {
    if (n <= 0) return this;
    const last = this.op.length - 1;
    if (last >= 0 && isDelete(this.op[last])) this.op[last] -= n;
    else this.op.push(-n);
    return this;
  }
}

export function apply(text, op) {
  const cps = Array.from(text);
  if (baseLen(op) !== cps.length) throw new Error(`op covers ${baseLen(op)} code points, text has ${cps.length}`);
  const out = [];
  let i = 0;
  for (const c of op) {
    if (isRetain(c)) { out.push(cps.slice(i, i + c).join("")); i += c; }
    else if (isDelete(c)) i -= c;
    else out.push(c);
  }
  return out.join("");
}

// Iterator walks an op's components, splitting them as needed.
class Iter {
  constructor(op) { this.op = op; this.i = 0; this.off = 0; }
  peek() { return this.i < this.op.length ? this.op[this.i] : undefined; }
  // Remaining length of the current component in code points.
  rest() {
    const c = this.op[this.i];
    return (isInsert(c) ? cpLen(c) : Math.abs(c)) - this.off;
  }
  // take(n) returns up to n code points of the current component.
  take(n) {
    const c = this.op[this.i];
    const len = this.rest();
    const k = Math.min(n, len);
    let piece;
    if (isInsert(c)) {
      const s = Array.from(c).slice(this.off, this.off + k).join("");
      piece = s;
    } else piece = c > 0 ? k : -k;
    if (k === len) { this.i++; this.off = 0; } else this.off += k;
    return piece;
  }
}

export function compose(a, b) {
  if (targetLen(a) !== baseLen(b)) throw new Error("compose: length mismatch");
  const out = new Builder(), ia = new Iter(a), ib = new Iter(b);
  for (;;) {
    const ca = ia.peek(), cb = ib.peek();
    if (ca === undefined && cb === undefined) return out.op;
    if (ca !== undefined && isDelete(ca)) { out.delete(-ia.take(Infinity)); continue; }
    if (cb !== undefined && isInsert(cb)) { out.insert(ib.take(Infinity)); continue; }
    const n = Math.min(ia.rest(), ib.rest());
    const pa = ia.take(n), pb = ib.take(n);
    if (isRetain(pb)) { if (isRetain(pa)) out.retain(n); else out.insert(pa); }
    else if (isRetain(pa)) out.delete(n); // pb deletes what a retained
    // else: b deletes what a inserted: nothing remains
  }
}

// transform(a, b) returns [a1, b1] with apply(apply(s,a),b1) ==
// apply(apply(s,b),a1). At equal positions a's inserts go first: a must
// be the op committed first, exactly as on the server.
export function transform(a, b) {
  if (baseLen(a) !== baseLen(b)) throw new Error("transform: length mismatch");
  const a1 = new Builder(), b1 = new Builder(), ia = new Iter(a), ib = new Iter(b);
  for (;;) {
    const ca = ia.peek(), cb = ib.peek();
    if (ca === undefined && cb === undefined) return [a1.op, b1.op];
    if (ca !== undefined && isInsert(ca)) {
      const s = ia.take(Infinity);
      a1.insert(s); b1.retain(cpLen(s));
      continue;
    }
    if (cb !== undefined && isInsert(cb)) {
      const s = ib.take(Infinity);
      b1.insert(s); a1.retain(cpLen(s));
      continue;
    }
    const n = Math.min(ia.rest(), ib.rest());
    const pa = ia.take(n), pb = ib.take(n);
    if (isRetain(pa) && isRetain(pb)) { a1.retain(n); b1.retain(n); }
    else if (isDelete(pa) && isRetain(pb)) a1.delete(n);
    else if (isRetain(pa) && isDelete(pb)) b1.delete(n);
    // both delete the same text: nothing to do
  }
}

// transformIndex moves a position through op: an insert at it pushes it
// right; a delete covering it moves it to the delete's start.
export function transformIndex(op, pos) {
  let out = pos, i = 0, runStart = 0;
  for (const c of op) {
    if (isRetain(c)) {
      i += c; runStart = i;
      if (i > pos) return out;
    } else if (isDelete(c)) {
      if (i < pos) out -= Math.min(-c, pos - i);
      i -= c;
    } else if (runStart <= pos) out += cpLen(c);
  }
  return out;
}

// moveRanges maps [anchor, head] selections through op.
export function moveRanges(op, ranges) {
  return ranges.map(([a, h]) => [transformIndex(op, a), transformIndex(op, h)]);
}

// diff returns the op turning text a into text b: one replaced span between
// their common prefix and suffix, as an edit in a textarea produces.
export function diff(a, b) {
  const ca = Array.from(a), cb = Array.from(b);
  let p = 0;
  while (p < ca.length && p < cb.length && ca[p] === cb[p]) p++;
  let s = 0;
  while (s < ca.length - p && s < cb.length - p && ca[ca.length - 1 - s] === cb[cb.length - 1 - s]) s++;
  return new Builder()
    .retain(p)
    .insert(cb.slice(p, cb.length - s).join(""))
    .delete(ca.length - p - s)
    .retain(s).op;
}

export const isNoop = (op) => op.every(isRetain);

// ---- client state machine -------------------------------------------------

// OTClient tracks the revision, the one op in flight and the buffer of
// later local edits, like ot.Client on the server side.
export class OTClient {
  constructor(rev, lastSeq) {
    this.rev = rev; this.lastSeq = lastSeq;
    this.inflight = null; // {seq, op}
    this.buffer = null;
  }
  synced() { return this.inflight === null; }
  // applyLocal records an op already applied locally; returns the message
  // to send, or null when it was buffered.
  applyLocal(op) {
    if (isNoop(op)) return null;
    if (this.inflight === null) {
      this.inflight = { seq: ++this.lastSeq, op };
      return this.message();
    }
    this.buffer = this.buffer === null ? op : compose(this.buffer, op);
    return null;
  }
  // applyServer rebases op rev from another editor over our pending ops
  // and returns what to apply to the local text.
  applyServer(rev, op) {
    if (rev !== this.rev + 1) throw new Error(`op ${rev} after rev ${this.rev}`);
    this.rev = rev;
    if (this.inflight === null) return op;
    let s;
    [s, this.inflight.op] = transform(op, this.inflight.op);
    if (this.buffer !== null) [s, this.buffer] = transform(s, this.buffer);
    return s;
  }
  // ack handles the ack of the op in flight; returns the next message.
  ack(rev, seq) {
    if (this.inflight === null || seq !== this.inflight.seq) throw new Error(`unexpected ack of seq ${seq}`);
    this.rev = rev;
    this.inflight = null;
    // Buffered edits that cancelled out (typed, then deleted) send nothing.
    if (this.buffer === null || isNoop(this.buffer)) { this.buffer = null; return null; }
    this.inflight = { seq: ++this.lastSeq, op: this.buffer };
    this.buffer = null;
    return this.message();
  }
  message() {
    return this.inflight && { type: "op", rev: this.rev, seq: this.inflight.seq, op: this.inflight.op };
  }
  // outstanding is every unacknowledged local edit as one op on the
  // current revision's text, or null.
  outstanding() {
    if (this.inflight === null) return null;
    return this.buffer === null ? this.inflight.op : compose(this.inflight.op, this.buffer);
  }
}

// ---- editing session ------------------------------------------------------

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// Session is one editor's connection to a document, reconnecting by itself.
// Callbacks: onReset(text) after a welcome with full text, onRemote(op)
// with an op to apply to the local text, onPeers(peers), onStatus(status,
// detail), onWelcome(welcome).
export class Session {
  constructor(docId, name, callbacks) {
    this.docId = docId; this.name = name; this.cb = callbacks;
    // The client id lives as long as the tab, so a reload resumes seqs.
    // It is this tab's secret resume key: the server never sends it, and
    // names every editor (us included, in welcome.author) by an author id.
    const key = `collabd-client-${docId}`;
    this.clientId = sessionStorage.getItem(key) || uuid();
    sessionStorage.setItem(key, this.clientId);
    this.client = null; this.text = ""; this.peers = new Map(); this.author = null;
    this.ws = null; this.retry = 0; this.closed = false;
    this.connect();
  }

  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/api/docs/${this.docId}/ws`);
    this.ws = ws;
    this.cb.onStatus("connecting");
    ws.onopen = () => {
      const hello = { type: "hello", client: this.clientId, name: this.name };
      if (this.client) hello.rev = this.client.rev;
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      const data = JSON.parse(ev.data);
      for (const m of Array.isArray(data) ? data : [data]) this.handle(m);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws || this.closed) return;
      // Errors about our own messages are fatal; everything else resumes.
      const fatal = ev.code === 4400 || ev.code === 4404 || ev.code === 4409 || ev.code === 4413;
      if (fatal) { this.cb.onStatus("failed", ev.reason || `closed with code ${ev.code}`); return; }
      const delay = Math.min(10000, 250 * 2 ** this.retry++) * (0.5 + Math.random());
      this.cb.onStatus("offline", `reconnecting in ${Math.round(delay / 1000)} s`);
      setTimeout(() => this.connect(), delay);
    };
  }

  send(msg) {
    if (msg && this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  handle(m) {
    switch (m.type) {
      case "welcome": return this.welcome(m);
      case "ack": return this.send(this.client.ack(m.rev, m.seq));
      case "op": return this.remote(m.rev, m.op);
      case "presence": {
        // The ranges are at the revision we are at; our local text also
        // holds our unacknowledged edits.
        const out = this.client && this.client.outstanding();
        const ranges = out ? moveRanges(out, m.ranges) : m.ranges;
        this.peers.set(m.author, { author: m.author, name: m.name, color: m.color, ranges });
        return this.cb.onPeers(this.peers);
      }
      case "leave":
        this.peers.delete(m.author);
        return this.cb.onPeers(this.peers);
      case "error":
        return this.cb.onStatus("error", `${m.code}: ${m.message}`);
    }
  }

  welcome(w) {
    this.retry = 0;
    this.author = w.author;
    if (w.text !== undefined || !this.client) {
      this.client = new OTClient(w.rev, w.lastSeq);
      this.text = w.text ?? "";
      this.cb.onReset(this.text);
    } else {
      // Catch-up: our own in-flight op among them is its missed ack.
      for (const r of w.ops) {
        const inf = this.client.inflight;
        if (inf && r.author && r.author === this.author && r.seq === inf.seq) this.client.ack(r.rev, r.seq);
        else this.remote(r.rev, r.op);
      }
      this.send(this.client.message());
    }
    // The peers' ranges are at the welcome's revision, which the catch-up
    // has brought us to; our local text also holds unacknowledged edits.
    const out = this.client.outstanding();
    this.peers = new Map(w.peers.map((p) => [p.author,
      { ...p, ranges: out ? moveRanges(out, p.ranges) : p.ranges }]));
    this.cb.onWelcome(w);
    this.cb.onPeers(this.peers);
    this.cb.onStatus("online");
  }

  remote(rev, op) {
    const local = this.client.applyServer(rev, op);
    this.text = apply(this.text, local);
    for (const p of this.peers.values()) p.ranges = moveRanges(local, p.ranges);
    this.cb.onRemote(local, this.text);
  }

  // edit records a local change, already made, from the old text to text.
  edit(text) {
    const op = diff(this.text, text);
    if (isNoop(op) || !this.client) return;
    this.text = text;
    for (const p of this.peers.values()) p.ranges = moveRanges(op, p.ranges);
    this.send(this.client.applyLocal(op));
  }

  cursor(ranges) {
    if (this.client && this.client.synced()) this.send({ type: "cursor", rev: this.client.rev, ranges });
  }

  close() { this.closed = true; if (this.ws) this.ws.close(1000); }
}
