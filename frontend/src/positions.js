// positions.js: converting between CodeMirror's UTF-16 positions and the
// code point positions of the wire protocol, in time that does not grow
// with the document. Pure, so Node tests it against the naive conversion.
//
// A document is UTF-16 text; only astral characters (emoji, rarer CJK,
// ...) take two units for one code point. AstralIndex keeps the sorted
// UTF-16 offsets of every surrogate pair, so a conversion is a binary
// search and an edit costs what it touches plus the pairs after it (a
// memmove of numbers), not a scan of the text. Lone surrogates count as one
// code point each, as cpLen does and Go's utf8 decoding of the server's
// replacement characters would.

import { isRetain, isDelete, normalize } from "./protocol.js";

const isHigh = (c) => c >= 0xd800 && c < 0xdc00;
const isLow = (c) => c >= 0xdc00 && c < 0xe000;

// pairsIn returns the offsets (plus base) of the surrogate pairs in s.
function pairsIn(s, base, out) {
  for (let i = 0; i + 1 < s.length; i++) {
    if (isHigh(s.charCodeAt(i)) && isLow(s.charCodeAt(i + 1))) { out.push(base + i); i++; }
  }
  return out;
}

export class AstralIndex {
  // text is the whole document as a string (read once, at load).
  constructor(text = "") { this.pos = pairsIn(text, 0, []); }

  // before returns how many pairs start before UTF-16 offset u.
  before(u) {
    const p = this.pos;
    let lo = 0, hi = p.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (p[m] < u) lo = m + 1; else hi = m; }
    return lo;
  }
  unitToCp(u) { return u - this.before(u); }
  // cpToUnit: the k-th pair sits at code point p[k]-k, a strictly growing
  // sequence, so the pairs before code point c are found by bisection too.
  cpToUnit(c) {
    const p = this.pos;
    let lo = 0, hi = p.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (p[m] - m < c) lo = m + 1; else hi = m; }
    return c + lo;
  }
  // cpCount is the number of code points in UTF-16 range [from, to).
  cpCount(from, to) { return to - from - (this.before(to) - this.before(from)); }

  // map updates the index for an edit. changes is the list of replaced
  // ranges in document order, {fromA, toA, fromB, toB} as CodeMirror's
  // iterChanges gives them (A: old document, B: new document); slice(a, b)
  // reads the new document. The unit on each side of a change is read
  // again, since an edit may join or split a pair at its boundary.
  map(changes, slice, newLength) {
    const old = this.pos, out = [];
    let i = 0, last = -2, shift = 0;
    const push = (u) => { if (u > last + 1) { out.push(u); last = u; } };
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
}

// opFromChanges turns one edit in UTF-16 ranges into a protocol op, using
// the index of the document before the edit. inserted(k) is the text the
// k-th change inserts; oldLength is the old document's UTF-16 length.
export function opFromChanges(index, changes, inserted, oldLength) {
  const op = [];
  const retain = (n) => { if (n > 0) { if (isRetain(op[op.length - 1])) op[op.length - 1] += n; else op.push(n); } };
  let at = 0; // UTF-16 offset in the old document reached so far
  changes.forEach(({ fromA, toA }, k) => {
    retain(index.cpCount(at, fromA));
    const ins = inserted(k);
    if (ins !== "") op.push(ins);
    const del = index.cpCount(fromA, toA);
    if (del > 0) {
      if (isDelete(op[op.length - 1])) op[op.length - 1] -= del; else op.push(-del);
    }
    at = toA;
  });
  retain(index.cpCount(at, oldLength));
  return normalize(op);
}

// changesFromOp turns a protocol op into CodeMirror change specs
// ({from, to, insert} in UTF-16 offsets of the document before it).
export function changesFromOp(index, op) {
  const out = [];
  let cp = 0;
  for (const c of op) {
    if (isRetain(c)) cp += c;
    else if (isDelete(c)) {
      const from = index.cpToUnit(cp), to = index.cpToUnit(cp - c);
      const prev = out[out.length - 1];
      if (prev && prev.to === from && prev.from === from) prev.to = to; // insert then delete at one spot
      else out.push({ from, to, insert: "" });
      cp -= c;
    } else {
      const at = index.cpToUnit(cp);
      out.push({ from: at, to: at, insert: c });
    }
  }
  return out;
}
