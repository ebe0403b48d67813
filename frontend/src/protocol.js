// protocol.js: collabd's text operations and the client state machine, as
// pure functions with no DOM, so Node's test runner checks them against the
// Go ot package (frontend/protocol_test.go). Text operations count Unicode
// code points, as the server does; JavaScript strings and CodeMirror count
// UTF-16 units, so every position crossing that boundary goes through
// cpToUnit / unitToCp here or through AstralIndex (positions.js).

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
// later local edits, like ot.Client on the server side. It also counts the
// local edits each of them holds, so the page can say how many wait.
export class OTClient {
  constructor(rev, lastSeq) {
    this.rev = rev; this.lastSeq = lastSeq;
    this.inflight = null; // {seq, op, edits}
    this.buffer = null; // {op, edits}
  }
  synced() { return this.inflight === null; }
  // pending is how many local edits the server has not acknowledged.
  pending() { return (this.inflight ? this.inflight.edits : 0) + (this.buffer ? this.buffer.edits : 0); }
  // applyLocal records an op already applied locally; returns the message
  // to send, or null when it was buffered.
  applyLocal(op) {
    if (isNoop(op)) return null;
    if (this.inflight === null) {
      this.inflight = { seq: ++this.lastSeq, op, edits: 1 };
      return this.message();
    }
    this.buffer = this.buffer === null ? { op, edits: 1 } : { op: compose(this.buffer.op, op), edits: this.buffer.edits + 1 };
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
    if (this.buffer !== null) [s, this.buffer.op] = transform(s, this.buffer.op);
    return s;
  }
  // ack handles the ack of the op in flight; returns the next message.
  ack(rev, seq) {
    if (this.inflight === null || seq !== this.inflight.seq) throw new Error(`unexpected ack of seq ${seq}`);
    this.rev = rev;
    this.inflight = null;
    // Buffered edits that cancelled out (typed, then deleted) send nothing.
    if (this.buffer === null || isNoop(this.buffer.op)) { this.buffer = null; return null; }
    this.inflight = { seq: ++this.lastSeq, op: this.buffer.op, edits: this.buffer.edits };
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
    return this.buffer === null ? this.inflight.op : compose(this.inflight.op, this.buffer.op);
  }
  // toJSON and fromJSON carry the whole state through IndexedDB, so a
  // reloaded page resumes with the same seqs and resends what was unsent.
  toJSON() { return { rev: this.rev, lastSeq: this.lastSeq, inflight: this.inflight, buffer: this.buffer }; }
  static fromJSON(j) {
    const c = new OTClient(j.rev, j.lastSeq);
    c.inflight = j.inflight; c.buffer = j.buffer;
    return c;
  }
}

// normalize returns op in canonical form (neighbours of one kind merged,
// an insert before a delete it touches), as the server stores it.
export function normalize(op) {
  const b = new Builder();
  for (const c of op) {
    if (isRetain(c)) b.retain(c); else if (isDelete(c)) b.delete(-c); else b.insert(c);
  }
  return b.op;
}

// replay rebuilds a client from a stored state and the changes logged
// after it (store.js): returns the client and the one op that turns the
// stored text into the text the page had, or null if none.
export function replay(state, events) {
  const client = OTClient.fromJSON(state);
  let op = null;
  const push = (o) => { op = op ? compose(op, o) : o; };
  for (const ev of events) {
    if (ev.k === "local") { client.applyLocal(ev.op); push(ev.op); }
    else if (ev.k === "remote") push(client.applyServer(ev.rev, ev.op));
    else if (ev.k === "ack") client.ack(ev.rev, ev.seq);
  }
  return { client, op };
}
