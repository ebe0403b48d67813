// protocol.js
function cpLen(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 55296 && c < 56320 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 56320 && d < 57344) i++;
    }
    n++;
  }
  return n;
}
function cpToUnit(s, cp) {
  let i = 0;
  for (let n = 0; n < cp && i < s.length; n++) {
    const c = s.charCodeAt(i);
    i += c >= 55296 && c < 56320 && i + 1 < s.length && (s.charCodeAt(i + 1) & 64512) === 56320 ? 2 : 1;
  }
  return i;
}
function unitToCp(s, unit) {
  return cpLen(s.slice(0, unit));
}
var isRetain = (c) => typeof c === "number" && c > 0;
var isDelete = (c) => typeof c === "number" && c < 0;
var isInsert = (c) => typeof c === "string";
function baseLen(op) {
  let n = 0;
  for (const c of op) if (typeof c === "number") n += Math.abs(c);
  return n;
}
function targetLen(op) {
  let n = 0;
  for (const c of op) n += isRetain(c) ? c : isInsert(c) ? cpLen(c) : 0;
  return n;
}
var Builder = class {
  constructor() {
    this.op = [];
  }
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
};
function apply(text, op) {
  const cps = Array.from(text);
  if (baseLen(op) !== cps.length) throw new Error(`op covers ${baseLen(op)} code points, text has ${cps.length}`);
  const out = [];
  let i = 0;
  for (const c of op) {
    if (isRetain(c)) {
      out.push(cps.slice(i, i + c).join(""));
      i += c;
    } else if (isDelete(c)) i -= c;
    else out.push(c);
  }
  return out.join("");
}
var Iter = class {
  constructor(op) {
    this.op = op;
    this.i = 0;
    this.off = 0;
  }
  peek() {
    return this.i < this.op.length ? this.op[this.i] : void 0;
  }
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
    if (k === len) {
      this.i++;
      this.off = 0;
    } else this.off += k;
    return piece;
  }
};
function compose(a, b) {
  if (targetLen(a) !== baseLen(b)) throw new Error("compose: length mismatch");
  const out = new Builder(), ia = new Iter(a), ib = new Iter(b);
  for (; ; ) {
    const ca = ia.peek(), cb = ib.peek();
    if (ca === void 0 && cb === void 0) return out.op;
    if (ca !== void 0 && isDelete(ca)) {
      out.delete(-ia.take(Infinity));
      continue;
    }
    if (cb !== void 0 && isInsert(cb)) {
      out.insert(ib.take(Infinity));
      continue;
    }
    const n = Math.min(ia.rest(), ib.rest());
    const pa = ia.take(n), pb = ib.take(n);
    if (isRetain(pb)) {
      if (isRetain(pa)) out.retain(n);
      else out.insert(pa);
    } else if (isRetain(pa)) out.delete(n);
  }
}
function transform(a, b) {
  if (baseLen(a) !== baseLen(b)) throw new Error("transform: length mismatch");
  const a1 = new Builder(), b1 = new Builder(), ia = new Iter(a), ib = new Iter(b);
  for (; ; ) {
    const ca = ia.peek(), cb = ib.peek();
    if (ca === void 0 && cb === void 0) return [a1.op, b1.op];
    if (ca !== void 0 && isInsert(ca)) {
      const s = ia.take(Infinity);
      a1.insert(s);
      b1.retain(cpLen(s));
      continue;
    }
    if (cb !== void 0 && isInsert(cb)) {
      const s = ib.take(Infinity);
      b1.insert(s);
      a1.retain(cpLen(s));
      continue;
    }
    const n = Math.min(ia.rest(), ib.rest());
    const pa = ia.take(n), pb = ib.take(n);
    if (isRetain(pa) && isRetain(pb)) {
      a1.retain(n);
      b1.retain(n);
    } else if (isDelete(pa) && isRetain(pb)) a1.delete(n);
    else if (isRetain(pa) && isDelete(pb)) b1.delete(n);
  }
}
function transformIndex(op, pos) {
  let out = pos, i = 0, runStart = 0;
  for (const c of op) {
    if (isRetain(c)) {
      i += c;
      runStart = i;
      if (i > pos) return out;
    } else if (isDelete(c)) {
      if (i < pos) out -= Math.min(-c, pos - i);
      i -= c;
    } else if (runStart <= pos) out += cpLen(c);
  }
  return out;
}
function moveRanges(op, ranges) {
  return ranges.map(([a, h]) => [transformIndex(op, a), transformIndex(op, h)]);
}
function diff(a, b) {
  const ca = Array.from(a), cb = Array.from(b);
  let p = 0;
  while (p < ca.length && p < cb.length && ca[p] === cb[p]) p++;
  let s = 0;
  while (s < ca.length - p && s < cb.length - p && ca[ca.length - 1 - s] === cb[cb.length - 1 - s]) s++;
  return new Builder().retain(p).insert(cb.slice(p, cb.length - s).join("")).delete(ca.length - p - s).retain(s).op;
}
var isNoop = (op) => op.every(isRetain);
var OTClient = class _OTClient {
  constructor(rev, lastSeq) {
    this.rev = rev;
    this.lastSeq = lastSeq;
    this.inflight = null;
    this.buffer = null;
  }
  synced() {
    return this.inflight === null;
  }
  // pending is how many local edits the server has not acknowledged.
  pending() {
    return (this.inflight ? this.inflight.edits : 0) + (this.buffer ? this.buffer.edits : 0);
  }
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
    if (this.buffer === null || isNoop(this.buffer.op)) {
      this.buffer = null;
      return null;
    }
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
  toJSON() {
    return { rev: this.rev, lastSeq: this.lastSeq, inflight: this.inflight, buffer: this.buffer };
  }
  static fromJSON(j) {
    const c = new _OTClient(j.rev, j.lastSeq);
    c.inflight = j.inflight;
    c.buffer = j.buffer;
    return c;
  }
};
function normalize(op) {
  const b = new Builder();
  for (const c of op) {
    if (isRetain(c)) b.retain(c);
    else if (isDelete(c)) b.delete(-c);
    else b.insert(c);
  }
  return b.op;
}
function replay(state, events) {
  const client = OTClient.fromJSON(state);
  let op = null;
  const push = (o) => {
    op = op ? compose(op, o) : o;
  };
  for (const ev of events) {
    if (ev.k === "local") {
      client.applyLocal(ev.op);
      push(ev.op);
    } else if (ev.k === "remote") push(client.applyServer(ev.rev, ev.op));
    else if (ev.k === "ack") client.ack(ev.rev, ev.seq);
  }
  return { client, op };
}

// session.js
var fatalCodes = /* @__PURE__ */ new Set([4400, 4403, 4404, 4409, 4413]);
var Session = class {
  // opts: {docId, clientId, name, client (an OTClient restored from
  // storage, or null), cb, wsURL (a function giving the session's URL),
  // fetch (optional), base (the server's origin), WebSocket (a
  // constructor, default the global one)}
  constructor(opts) {
    Object.assign(this, { docId: opts.docId, clientId: opts.clientId, name: opts.name, cb: opts.cb });
    this.client = opts.client || null;
    this.author = opts.author || null;
    this.wsURL = opts.wsURL;
    this.fetch = opts.fetch || ((...a) => fetch(...a));
    this.base = opts.base || "";
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    this.peers = /* @__PURE__ */ new Map();
    this.comments = /* @__PURE__ */ new Map();
    this.ws = null;
    this.retry = 0;
    this.closed = false;
    this.live = false;
    this.everLive = false;
    this.timer = null;
    this.wantCursor = null;
    this.sentCursor = "";
  }
  start() {
    this.connect();
  }
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
    if (old && old.readyState <= 1) try {
      old.close(1e3);
    } catch {
    }
    if (!this.quiet) this.cb.onStatus("connecting");
    let welcomed = false;
    ws.onerror = () => {
    };
    ws.onopen = () => {
      if (ws !== this.ws) return;
      const hello = { type: "hello", client: this.clientId, name: this.name, features: ["comments"] };
      if (this.client) hello.rev = this.client.rev;
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      let data;
      try {
        data = JSON.parse(ev.data);
      } catch {
        return;
      }
      for (const m of Array.isArray(data) ? data : [data]) {
        if (m.type === "welcome") welcomed = true;
        try {
          this.handle(m);
        } catch (err) {
          console.error("collabd: resyncing after", err);
          this.cb.onConflict();
          this.client = null;
          ws.close(1e3);
          return;
        }
      }
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws || this.closed) return;
      this.live = false;
      this.quiet = false;
      if (fatalCodes.has(ev.code)) {
        this.closed = true;
        this.cb.onFatal(codeName(ev.code), this.lastError || ev.reason || "");
        return;
      }
      if (!welcomed && !this.everLive && ev.code === 1006) {
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
        const w = await this.fetch(`${this.base}/api/docs/${encodeURIComponent(this.docId)}/ws`, { method: "HEAD", cache: "no-store" });
        if (w.status === 403) status = 403;
      }
    } catch {
    }
    if (this.closed) return;
    if (status === 404 || status === 403) {
      this.closed = true;
      this.cb.onFatal(status === 404 ? "not_found" : "forbidden", "");
      return;
    }
    if (status === 401 && this.cb.onUnauthorized && !this.cb.onUnauthorized(status)) {
      this.closed = true;
      this.cb.onFatal("unauthorized", "");
      return;
    }
    this.scheduleRetry(1);
  }
  scheduleRetry(factor) {
    const delay = Math.min(1e4, 250 * 2 ** this.retry++) * (0.5 + Math.random()) * factor;
    this.cb.onStatus("offline", delay);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }
  // online is called when the browser says the network is back.
  online() {
    if (!this.live && !this.closed) {
      this.retry = 0;
      this.reconnect(false);
    }
  }
  // offline is called when the browser says the network is gone: a
  // socket may linger half-open for minutes, so drop it now and keep
  // edits locally until online().
  offline() {
    if (this.ws && this.ws.readyState <= 1 && !this.closed) this.ws.close(1e3);
  }
  send(msg) {
    if (msg && this.live && this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(msg));
  }
  handle(m) {
    switch (m.type) {
      case "welcome":
        return this.welcome(m);
      case "ack": {
        const next = this.client.ack(m.rev, m.seq);
        this.cb.onEvent({ k: "ack", rev: m.rev, seq: m.seq });
        this.cb.onPending(this.client.pending());
        this.send(next);
        if (!next) this.flushCursor();
        return;
      }
      case "op":
        return this.remote(m.rev, m.op, m.author);
      case "presence": {
        const who = m.author ?? m.client;
        const out = this.client && this.client.outstanding();
        const ranges = out ? moveRanges(out, m.ranges || []) : m.ranges || [];
        this.peers.set(who, { author: who, name: m.name, color: m.color, ranges });
        return this.cb.onPeers(this.peers);
      }
      case "leave":
        this.peers.delete(m.author ?? m.client);
        return this.cb.onPeers(this.peers);
      case "comments": {
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
    const mine = (r) => w.author ? r.author === w.author : r.client === this.clientId;
    if (w.text !== void 0 || !this.client) {
      const c = this.client;
      if (c && (c.buffer || c.inflight && w.lastSeq < c.inflight.seq)) this.cb.onConflict();
      this.client = new OTClient(w.rev, w.lastSeq);
      this.cb.onReset(w.text ?? "");
    } else {
      for (const r of w.ops || []) {
        const inf2 = this.client.inflight;
        if (inf2 && mine(r) && r.seq === inf2.seq) {
          this.client.ack(r.rev, r.seq);
          this.cb.onEvent({ k: "ack", rev: r.rev, seq: r.seq });
        } else this.remote(r.rev, r.op, r.author);
      }
      const inf = this.client.inflight;
      if (inf && w.lastSeq >= inf.seq) throw new Error(`seq ${inf.seq} applied but not in the catch-up`);
    }
    const out = this.client.outstanding();
    this.peers = new Map((w.peers || []).map((p) => {
      const who = p.author ?? p.client;
      return [who, { author: who, name: p.name, color: p.color, ranges: out ? moveRanges(out, p.ranges || []) : p.ranges || [] }];
    }));
    this.live = true;
    this.everLive = true;
    this.quiet = false;
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
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1e3);
  }
};
function moveLeft(op, pos) {
  let i = 0, out = 0;
  for (const c of op) {
    if (typeof c === "number" && c > 0) {
      if (i + c >= pos) return out + (pos - i);
      i += c;
      out += c;
    } else if (typeof c === "number") {
      if (i - c > pos) return out;
      i -= c;
    } else {
      if (i === pos) return out;
      out += Array.from(c).length;
    }
  }
  return out;
}
function codeName(code) {
  return { 4400: "bad_message", 4403: "forbidden", 4404: "not_found", 4409: "bad_op", 4413: "too_large" }[code] || String(code);
}

// positions.js
var isHigh = (c) => c >= 55296 && c < 56320;
var isLow = (c) => c >= 56320 && c < 57344;
function pairsIn(s, base, out) {
  for (let i = 0; i + 1 < s.length; i++) {
    if (isHigh(s.charCodeAt(i)) && isLow(s.charCodeAt(i + 1))) {
      out.push(base + i);
      i++;
    }
  }
  return out;
}
var AstralIndex = class {
  // text is the whole document as a string (read once, at load).
  constructor(text = "") {
    this.pos = pairsIn(text, 0, []);
  }
  // before returns how many pairs start before UTF-16 offset u.
  before(u) {
    const p = this.pos;
    let lo = 0, hi = p.length;
    while (lo < hi) {
      const m = lo + hi >> 1;
      if (p[m] < u) lo = m + 1;
      else hi = m;
    }
    return lo;
  }
  unitToCp(u) {
    return u - this.before(u);
  }
  // cpToUnit: the k-th pair sits at code point p[k]-k, a strictly growing
  // sequence, so the pairs before code point c are found by bisection too.
  cpToUnit(c) {
    const p = this.pos;
    let lo = 0, hi = p.length;
    while (lo < hi) {
      const m = lo + hi >> 1;
      if (p[m] - m < c) lo = m + 1;
      else hi = m;
    }
    return c + lo;
  }
  // cpCount is the number of code points in UTF-16 range [from, to).
  cpCount(from, to) {
    return to - from - (this.before(to) - this.before(from));
  }
  // map updates the index for an edit. changes is the list of replaced
  // ranges in document order, {fromA, toA, fromB, toB} as CodeMirror's
  // iterChanges gives them (A: old document, B: new document); slice(a, b)
  // reads the new document. The unit on each side of a change is read
  // again, since an edit may join or split a pair at its boundary.
  map(changes, slice, newLength) {
    const old = this.pos, out = [];
    let i = 0, last = -2, shift = 0;
    const push = (u) => {
      if (u > last + 1) {
        out.push(u);
        last = u;
      }
    };
    for (const { fromA, toA, fromB, toB } of changes) {
      shift = fromB - fromA;
      while (i < old.length && old[i] < fromA - 1) push(old[i++] + shift);
      while (i < old.length && old[i] < toA + 1) i++;
      const start = Math.max(fromB - 1, last + 2, 0), end = Math.min(newLength, toB + 2);
      if (start < end) for (const u of pairsIn(slice(start, end), start, [])) push(u);
      shift = toB - toA;
    }
    while (i < old.length) push(old[i++] + shift);
    this.pos = out;
  }
};
function opFromChanges(index, changes, inserted, oldLength) {
  const op = [];
  const retain = (n) => {
    if (n > 0) {
      if (isRetain(op[op.length - 1])) op[op.length - 1] += n;
      else op.push(n);
    }
  };
  let at = 0;
  changes.forEach(({ fromA, toA }, k) => {
    retain(index.cpCount(at, fromA));
    const ins = inserted(k);
    if (ins !== "") op.push(ins);
    const del = index.cpCount(fromA, toA);
    if (del > 0) {
      if (isDelete(op[op.length - 1])) op[op.length - 1] -= del;
      else op.push(-del);
    }
    at = toA;
  });
  retain(index.cpCount(at, oldLength));
  return normalize(op);
}
function changesFromOp(index, op) {
  const out = [];
  let cp = 0;
  for (const c of op) {
    if (isRetain(c)) cp += c;
    else if (isDelete(c)) {
      const from = index.cpToUnit(cp), to = index.cpToUnit(cp - c);
      const prev = out[out.length - 1];
      if (prev && prev.to === from && prev.from === from) prev.to = to;
      else out.push({ from, to, insert: "" });
      cp -= c;
    } else {
      const at = index.cpToUnit(cp);
      out.push({ from: at, to: at, insert: c });
    }
  }
  return out;
}

// store.js
var DB = "collabd";
var VERSION = 1;
function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}
function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}
function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = b[6] & 15 | 64;
  b[8] = b[8] & 63 | 128;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
function lock(name) {
  const locks = globalThis.navigator?.locks;
  if (!locks) return Promise.resolve(true);
  return new Promise((resolve) => {
    locks.request(name, { ifAvailable: true }, (l) => {
      resolve(!!l);
      return l ? new Promise(() => {
      }) : void 0;
    });
  });
}
var Store = class _Store {
  constructor(db) {
    this.db = db;
    this.n = 0;
    this.clientId = null;
    this.failed = false;
  }
  static async open() {
    if (!globalThis.indexedDB) return null;
    const r = indexedDB.open(DB, VERSION);
    r.onupgradeneeded = () => {
      const db = r.result;
      const clients = db.createObjectStore("clients", { keyPath: "clientId" });
      clients.createIndex("docId", "docId");
      db.createObjectStore("log", { keyPath: ["clientId", "n"] });
    };
    try {
      return new _Store(await req(r));
    } catch {
      return null;
    }
  }
  // adopt picks this tab's client id for docId and loads what is stored
  // for it: {clientId, record (or null), events}. preferred is the id
  // this tab used before a reload.
  async adopt(docId, preferred) {
    const tx = this.db.transaction("clients");
    const recs = await req(tx.objectStore("clients").index("docId").getAll(docId));
    recs.sort((a, b) => (b.pending || 0) - (a.pending || 0) || (b.updated || 0) - (a.updated || 0));
    const ids = [...new Set([preferred, ...recs.map((r) => r.clientId)].filter(Boolean))];
    for (const id2 of ids) {
      if (!await lock(`collabd-client-${id2}`)) continue;
      const rec = recs.find((r) => r.clientId === id2) || null;
      const events = rec ? await this.events(id2, rec.n) : [];
      this.clientId = id2;
      this.n = events.length ? events[events.length - 1].n : rec ? rec.n : 0;
      return { clientId: id2, record: rec, events: events.map((e) => e.ev) };
    }
    let id = uuid();
    while (!await lock(`collabd-client-${id}`)) id = uuid();
    this.clientId = id;
    return { clientId: id, record: null, events: [] };
  }
  async events(clientId, after) {
    const range = IDBKeyRange.bound([clientId, after + 1], [clientId, Infinity]);
    return req(this.db.transaction("log").objectStore("log").getAll(range));
  }
  // append logs one state change; the returned promise settles when it is
  // on disk (the page does not wait for it).
  append(ev) {
    const n = ++this.n;
    const tx = this.db.transaction("log", "readwrite");
    tx.objectStore("log").put({ clientId: this.clientId, n, ev });
    return done(tx).catch((err) => {
      this.failed = true;
      throw err;
    });
  }
  // snapshot stores the whole state and drops the log it replaces.
  snapshot(docId, snap) {
    const n = this.n, clientId = this.clientId;
    const tx = this.db.transaction(["clients", "log"], "readwrite");
    tx.objectStore("clients").put({ clientId, docId, n, updated: Date.now(), pending: snap.pending, snap });
    tx.objectStore("log").delete(IDBKeyRange.bound([clientId, 0], [clientId, n]));
    return done(tx);
  }
  // forget drops everything stored for this tab's client.
  forget() {
    const clientId = this.clientId;
    const tx = this.db.transaction(["clients", "log"], "readwrite");
    tx.objectStore("clients").delete(clientId);
    tx.objectStore("log").delete(IDBKeyRange.bound([clientId, 0], [clientId, Infinity]));
    this.n = 0;
    return done(tx);
  }
  // forgetDoc drops what is stored for a document by tabs that are gone
  // and left no edits waiting (the home page's "Remove").
  async forgetDoc(docId) {
    const recs = await req(this.db.transaction("clients").objectStore("clients").index("docId").getAll(docId));
    for (const r of recs) {
      if (r.pending || (await this.events(r.clientId, r.n)).length) continue;
      if (!await lock(`collabd-client-${r.clientId}`)) continue;
      this.clientId = r.clientId;
      await this.forget();
    }
  }
};

// sdk/collabd.js
var PROTOCOL_VERSION = 2;
var CollabError = class extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.name = "CollabError";
    this.code = code;
    if (status !== void 0) this.status = status;
  }
};
function apply2(text, op) {
  let out = "", u = 0;
  for (const c of op) {
    if (typeof c === "string") {
      out += c;
      continue;
    }
    const end = advance(text, u, Math.abs(c));
    if (c > 0) out += text.slice(u, end);
    u = end;
  }
  if (u !== text.length) throw new CollabError("bad_op", `op covers ${baseLen(op)} code points, the text has ${cpLen(text)}`);
  return out;
}
var pairRe = /[\uD800-\uDBFF][\uDC00-\uDFFF]/g;
function advance(s, u, n) {
  while (n > 0) {
    const end = u + n;
    if (end > s.length) throw new CollabError("bad_op", "op is longer than the text");
    const chunk = s.slice(u, Math.min(end + 1, s.length));
    let pairs = 0, cut = 0;
    pairRe.lastIndex = 0;
    for (let m; m = pairRe.exec(chunk); ) {
      if (m.index === n - 1) cut = 1;
      else pairs++;
    }
    u = end + cut;
    n = pairs;
  }
  return u;
}
function httpBase(server) {
  if (!server) {
    if (globalThis.location) return globalThis.location.origin;
    throw new TypeError("collabd: `server` is required outside a browser");
  }
  return String(server).replace(/\/+$/, "").replace(/^ws(s?):/, "http$1:");
}
function tokenExp(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = JSON.parse(atob(part + "=".repeat((4 - part.length % 4) % 4)));
    return typeof json.exp === "number" ? json.exp * 1e3 : null;
  } catch {
    return null;
  }
}
var Emitter = class {
  constructor() {
    this._on = /* @__PURE__ */ new Map();
  }
  on(event, fn) {
    if (!this._on.has(event)) this._on.set(event, /* @__PURE__ */ new Set());
    this._on.get(event).add(fn);
    return () => this.off(event, fn);
  }
  off(event, fn) {
    this._on.get(event)?.delete(fn);
  }
  emit(event, ...args) {
    for (const fn of [...this._on.get(event) || []]) {
      try {
        fn(...args);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
};
var refreshMargin = (life) => Math.min(6e4, Math.max(1e3, life / 5));
var TokenKeeper = class {
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
    return !!exp && exp - Date.now() < 1e3;
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
          clearTimeout(this.timer);
          if (!this.stopped) this.timer = setTimeout(() => this.refresh(), 5e3);
          return false;
        } finally {
          this.inflight = null;
        }
      })();
    }
    return this.inflight;
  }
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }
};
async function request(fetchFn, url, { method = "GET", token, body, headers = {}, text = false } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== void 0) h["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetchFn(url, { method, headers: h, body: body === void 0 ? void 0 : JSON.stringify(body), cache: "no-store" });
  } catch (err) {
    throw new CollabError("network", String(err && err.message || err));
  }
  if (!r.ok) {
    let code = "http_" + r.status, message = r.statusText, extra = {};
    try {
      const j = await r.json();
      if (j && j.error) {
        code = j.error.code;
        message = j.error.message;
        extra = j;
      }
    } catch {
    }
    const e = new CollabError(code, message, r.status);
    if (extra.rev !== void 0) e.rev = extra.rev;
    throw e;
  }
  if (text) return { text: await r.text(), rev: Number(r.headers.get("X-Collab-Rev")) };
  return r.status === 204 ? null : r.json();
}
var enc = encodeURIComponent;
var CollabAPI = class {
  constructor({ server, token, fetch: f } = {}) {
    this.server = httpBase(server);
    this.token = token || null;
    this._fetch = f || globalThis.fetch.bind(globalThis);
  }
  _req(path, o = {}) {
    return request(this._fetch, this.server + path, { token: this.token, ...o });
  }
  create(text) {
    return this._req("/api/docs", { method: "POST", body: text === void 0 ? {} : { text } });
  }
  get(id, { rev, at } = {}) {
    const q = rev !== void 0 ? `?rev=${rev}` : at ? `?at=${enc(at instanceof Date ? at.toISOString() : at)}` : "";
    return this._req(`/api/docs/${enc(id)}${q}`);
  }
  ops(id, from = 0) {
    return this._req(`/api/docs/${enc(id)}/ops?from=${from}`);
  }
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
  revert(id, run, name) {
    return this._req(`/api/docs/${enc(id)}/revert`, { method: "POST", body: clean({ run, name }) });
  }
  restore(id, rev) {
    return this._req(`/api/docs/${enc(id)}/restore`, { method: "POST", body: { rev } });
  }
};
function clean(o) {
  const out = {};
  for (const [k, v] of Object.entries(o)) if (v !== void 0 && v !== null) out[k] = v;
  return out;
}
var idem = (k) => k ? { "Idempotency-Key": k } : {};
function indexedDBPersistence({ snapshotAfter = 2e3 } = {}) {
  let store = null, docId = null, logged = 0, idle = 0, state = null;
  const snapshot = () => {
    if (!store || !state) return;
    logged = 0;
    clearTimeout(idle);
    const s = state();
    if (s) store.snapshot(docId, s).catch(() => {
    });
  };
  return {
    async load(id, preferred) {
      store = await Store.open().catch(() => null);
      if (!store) return null;
      docId = id;
      const got = await store.adopt(id, preferred).catch(() => null);
      if (!got) {
        store = null;
        return null;
      }
      if (!got.record) return { clientId: got.clientId };
      try {
        const { client, op } = replay(got.record.snap.client, got.events);
        const text = op ? apply2(got.record.snap.text, op) : got.record.snap.text;
        return { clientId: got.clientId, client, text, author: got.record.snap.author };
      } catch {
        return { clientId: got.clientId };
      }
    },
    attach(getState) {
      state = getState;
    },
    record(ev) {
      if (!store) return;
      if (ev.k === "snap") {
        snapshot();
        return;
      }
      logged++;
      store.append(ev).catch(() => {
      });
      clearTimeout(idle);
      if (logged >= 1e3) snapshot();
      else idle = setTimeout(() => {
        if (logged) snapshot();
      }, snapshotAfter);
    },
    flush() {
      if (logged) snapshot();
    },
    forget() {
      clearTimeout(idle);
      return store ? store.forget().catch(() => {
      }) : Promise.resolve();
    },
    close() {
      if (logged) snapshot();
      clearTimeout(idle);
    }
  };
}
var CollabDocument = class _CollabDocument extends Emitter {
  // open connects and resolves once the document's text is here (or, with
  // persistence holding an earlier session, once it is restored and
  // resynced). It rejects with a CollabError when the server refuses
  // (not_found, unauthorized, ...).
  static async open(opts) {
    const doc = new _CollabDocument(opts);
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
    this._tokens = new TokenKeeper(o.token, o.getToken, () => {
      if (this._live()) this._session.reconnect(true);
    });
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
    if (this._delta) {
      this._text = apply2(this._text, this._delta);
      this._delta = null;
      this._deltaIns = 0;
    }
    return this._text;
  }
  get length() {
    return this._len;
  }
  _setText(text) {
    this._text = text;
    this._delta = null;
    this._deltaIns = 0;
    this._len = cpLen(text);
  }
  // _advance records op (on the current text) as applied, throwing before
  // anything changes when it does not fit the text.
  _advance(op) {
    const n = baseLen(op);
    if (n !== this._len) throw new CollabError("bad_op", `op covers ${n} code points, the text has ${this._len}`);
    this._len = targetLen(op);
    this._delta = this._delta ? compose(this._delta, op) : op;
    for (const c of op) if (typeof c === "string") this._deltaIns += c.length;
    if (this._delta.length > 256 || this._deltaIns > 4096) void this.text;
  }
  get rev() {
    return this._session?.client ? this._session.client.rev : 0;
  }
  get author() {
    return this._session?.author || null;
  }
  get token() {
    return this._tokens.token;
  }
  // pending is how many local edits the server has not acknowledged.
  get pending() {
    return this._pending;
  }
  // status: "connecting" | "live" | "offline" | "failed" | "closed".
  get status() {
    return this._status;
  }
  // peers are the other editors, their selections moved through every
  // edit since they were sent.
  get peers() {
    return [...this._session?.peers.values() || []].map((p) => ({ author: p.author, name: p.name, color: p.color, ranges: p.ranges }));
  }
  // comments are the comment threads (docs/comments.md), by id, their
  // ranges in code points of the local text, moved through every edit.
  get comments() {
    return this._session?.comments || /* @__PURE__ */ new Map();
  }
  // editable: the text is here (restored, or from a welcome) and the
  // document neither failed nor closed, so that edits may be made.
  get editable() {
    return !!this._session?.client && !this._failed && !this._closed;
  }
  get api() {
    return new CollabAPI({ server: this.server, token: this._tokens.token, fetch: this._fetch });
  }
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
        if (got.client) {
          client = got.client;
          author = got.author || null;
          this._setText(got.text || "");
        }
      }
      this._persist.attach?.(() => this._session?.client && {
        text: this.text,
        client: this._session.client.toJSON(),
        author: this._session.author,
        pending: this._session.client.pending()
      });
    }
    if (!this.clientId) this.clientId = uuid();
    this._session = new Session({
      docId: this.id,
      clientId: this.clientId,
      name: this.name,
      client,
      author,
      WebSocket: this._WebSocket,
      wsURL: () => this._wsURL(),
      base: this.server,
      fetch: (url, init) => this._fetch(url, { ...init, headers: this._tokens.token ? { Authorization: `Bearer ${this._tokens.token}` } : {} }),
      cb: {
        onReset: (text) => {
          const op = diff(this.text, text);
          this._setText(text);
          if (!isNoop(op)) this.emit("change", { op, author: null, local: false, rev: this.rev, reset: true });
        },
        onRemote: (op, author2, rev) => {
          this._advance(op);
          this.emit("change", { op, author: author2 || "", local: false, rev });
        },
        onPeers: () => this.emit("presence", this.peers),
        onComments: (threads, msg) => this.emit("comments", threads, msg || null),
        onStatus: (s, delay, why) => this._onStatus(s, why, delay),
        onWelcome: (w) => {
          this.viewId = w.viewId;
          this.color = w.color;
          this.emit("welcome", w);
        },
        onEvent: (ev) => {
          if (this._persist) this._persist.record(ev);
        },
        onPending: (n) => {
          this._pending = n;
          this.emit("pending", n);
          if (n === 0) this._settle();
        },
        onConflict: () => this.emit("conflict"),
        onFatal: (code, msg) => this._fail(new CollabError(code, msg || code)),
        onUnauthorized: (status) => {
          if (status !== 401 || !this._tokens.getToken) return false;
          this._tokens.refresh();
          return true;
        }
      }
    });
    if (client) this._pending = client.pending();
    return !!client;
  }
  // connect starts the session (loading first, if load() was not called)
  // and resolves once it is live; it rejects with a CollabError when the
  // server refuses (not_found, unauthorized, ...). open() calls it.
  connect() {
    if (!this._connected) {
      this._connected = new Promise((resolve, reject) => {
        this._ready = { resolve, reject };
      });
      this.load().then(() => {
        if (!this._closed) this._session.start();
      }, (err) => this._fail(err instanceof CollabError ? err : new CollabError("network", String(err))));
    }
    return this._connected;
  }
  _onStatus(s, why, delay) {
    if (this._closed) return;
    this._status = s;
    this.retryAt = s === "offline" ? Date.now() + (delay || 0) : 0;
    this.emit("status", s, why, delay || 0);
    if (s === "live" && this._ready) {
      this._ready.resolve();
      this._ready = null;
    }
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
    if (this._ready) {
      this._ready.reject(err);
      this._ready = null;
    }
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
  replace(text) {
    this.applyOp(diff(this.text, text));
  }
  // setSelection tells the others this editor's selections, [anchor,
  // head] pairs in code points of the local text; sent once nothing is
  // unacknowledged.
  setSelection(ranges) {
    this._session?.cursor(ranges.map((r) => Array.isArray(r) ? [r[0], r[1]] : [r.anchor, r.head]));
  }
  // setName changes the name the others see (a token's name wins).
  setName(name) {
    this.name = name;
    if (this._session) this._session.name = name;
    if (this._live()) this._session.reconnect(true);
  }
  // reconnect drops the connection and resumes at once (after the network
  // is back, say); offline() drops it until online().
  reconnect() {
    if (this._live()) this._session.online();
  }
  offline() {
    if (this._live()) this._session.offline();
  }
  // _live: the session exists and connect() started it.
  _live() {
    return !!(this._session && this._connected && !this._closed);
  }
  // setToken replaces the access token and moves the session to it.
  setToken(token) {
    this._tokens.token = token;
    this._tokens.schedule();
    if (this._live()) this._session.reconnect(true);
  }
  // history helpers, on this document's id and token.
  ops(from = 0) {
    return this.api.ops(this.id, from);
  }
  revisions(o) {
    return this.api.revisions(this.id, o);
  }
  textAt(rev) {
    return this.api.get(this.id, { rev }).then((d) => d.text);
  }
  restore(rev) {
    return this.api.restore(this.id, rev);
  }
  close() {
    if (this._closed) return;
    this._closed = true;
    this._status = "closed";
    this._tokens.stop();
    this._session?.close();
    this._persist?.close?.();
    this._settle();
    if (this._ready) {
      this._ready.reject(new CollabError("closed", "closed before it opened"));
      this._ready = null;
    }
  }
};
var CollabViewer = class _CollabViewer extends Emitter {
  static async open(opts) {
    const v = new _CollabViewer(opts);
    await v._first;
    return v;
  }
  constructor(o = {}) {
    super();
    if (!o.viewId && !o.id) throw new TypeError("collabd: `viewId` is required");
    this.server = httpBase(o.server);
    this._path = o.viewId ? `/api/view/${enc(o.viewId)}/events` : `/api/docs/${enc(o.id)}/events`;
    this._fetch = o.fetch || globalThis.fetch.bind(globalThis);
    this._tokens = new TokenKeeper(o.token, o.getToken, () => {
    });
    this._text = "";
    this._rev = -1;
    this._closed = false;
    this._retry = 0;
    this._first = new Promise((resolve, reject) => {
      this._ready = { resolve, reject };
    });
    this._first.catch(() => {
    });
    this._run();
  }
  get text() {
    return this._text;
  }
  get rev() {
    return Math.max(this._rev, 0);
  }
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
        if (r.status === 401 && await this._tokens.refresh()) continue;
        if (!r.ok) {
          let code = "http_" + r.status;
          try {
            code = (await r.json()).error.code;
          } catch {
          }
          if (r.status === 404 || r.status === 401 || r.status === 403) {
            this._fail(new CollabError(code, code, r.status));
            return;
          }
          throw new Error(code);
        }
        this.emit("status", "live");
        await this._read(r.body);
      } catch (err) {
        if (this._closed) return;
        if (status === 0 && this._ready && this._retry > 3) {
          this._fail(new CollabError("network", String(err.message || err)));
          return;
        }
      }
      if (this._closed) return;
      this.emit("status", "offline");
      const delay = Math.min(1e4, 250 * 2 ** this._retry++) * (0.5 + Math.random());
      await new Promise((r) => {
        this._timer = setTimeout(r, delay);
      });
    }
  }
  async _read(body) {
    const reader = body.getReader(), dec = new TextDecoder();
    let buf = "", event = "message", data = [];
    for (; ; ) {
      const { value, done: done2 } = await reader.read();
      if (done2) return;
      buf += dec.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        let line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line === "") {
          if (data.length) this._event(event, data.join("\n"));
          event = "message";
          data = [];
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
      this._text = apply2(this._text, d.op);
      this._rev = d.rev;
      this.emit("change", { op: d.op, rev: d.rev });
    }
    if (this._ready) {
      this._ready.resolve();
      this._ready = null;
    }
  }
  _fail(err) {
    this._closed = true;
    this.emit("error", err);
    if (this._ready) {
      this._ready.reject(err);
      this._ready = null;
    }
  }
  close() {
    this._closed = true;
    this._tokens.stop();
    clearTimeout(this._timer);
    this._abort?.abort();
    if (this._ready) {
      this._ready.reject(new CollabError("closed", "closed before it opened"));
      this._ready = null;
    }
  }
};
export {
  AstralIndex,
  CollabAPI,
  CollabDocument,
  CollabError,
  CollabViewer,
  OTClient,
  PROTOCOL_VERSION,
  apply2 as apply,
  apply as applyReference,
  baseLen,
  changesFromOp,
  compose,
  cpLen,
  cpToUnit,
  diff,
  indexedDBPersistence,
  moveRanges,
  normalize,
  opFromChanges,
  tokenExp,
  transform,
  transformIndex,
  unitToCp,
  uuid
};
