// Tests of the frontend's pure modules (protocol.js, session.js,
// positions.js) with Node's test runner: properties over random texts with
// emoji, the session's catch-up and replay, and agreement with the Go ot
// package on cases that frontend/protocol_test.go generates (OT_CASES
// names the file).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as p from "../src/protocol.js";
import { Session, moveLeft } from "../src/session.js";
import { AstralIndex, opFromChanges, changesFromOp } from "../src/positions.js";

const alphabet = Array.from("abc é漢字😀👩‍💻\n");
let seed = Number(process.env.SEED || 1);
function rand(n) {
  // xorshift32: reproducible from SEED.
  seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
  return seed % n;
}
function randText(n) {
  let s = "";
  for (let i = 0; i < n; i++) s += alphabet[rand(alphabet.length)];
  return s;
}
function randOp(text) {
  const len = p.cpLen(text);
  const b = [];
  let i = 0;
  while (i < len) {
    const n = 1 + rand(Math.min(4, len - i));
    const k = rand(3);
    if (k === 0) b.push(n);
    else if (k === 1) b.push(-n);
    else { b.push(randText(1 + rand(3))); continue; }
    i += n;
  }
  if (rand(2)) b.push(randText(1 + rand(3)));
  // Canonicalize through compose with an identity retain.
  return len === 0 && b.length === 0 ? [] : p.compose(b, p.targetLen(b) ? [p.targetLen(b)] : []);
}

test("code point helpers", () => {
  const s = "a😀b👩‍💻";
  assert.equal(p.cpLen(s), 6);
  assert.equal(p.cpToUnit(s, 2), 3);
  assert.equal(p.unitToCp(s, 3), 2);
  assert.equal(p.apply("hello", [5, " world"]), "hello world");
  assert.equal(p.apply("hello", [-1, "H", 4]), "Hello");
  assert.throws(() => p.apply("hello", [4, "x"]));
});

test("diff produces the op between two texts", () => {
  for (let i = 0; i < 300; i++) {
    const a = randText(rand(12)), b = randText(rand(12));
    assert.equal(p.apply(a, p.diff(a, b)), b);
  }
});

test("transform converges (TP1) and compose agrees with apply", () => {
  for (let i = 0; i < 500; i++) {
    const s = randText(rand(10));
    const a = randOp(s), b = randOp(s);
    const [a1, b1] = p.transform(a, b);
    assert.equal(p.apply(p.apply(s, a), b1), p.apply(p.apply(s, b), a1), `s=${JSON.stringify(s)} a=${JSON.stringify(a)} b=${JSON.stringify(b)}`);
    const c = randOp(p.apply(s, a));
    assert.equal(p.apply(s, p.compose(a, c)), p.apply(p.apply(s, a), c));
  }
});

test("the op committed first inserts to the left", () => {
  const [a1, b1] = p.transform(["x"], ["y"]);
  assert.equal(p.apply(p.apply("", ["x"]), b1), "xy");
  assert.equal(p.apply(p.apply("", ["y"]), a1), "xy");
});

test("client state machine rebases pending edits", () => {
  const c = new p.OTClient(0, 0);
  assert.deepEqual(c.applyLocal(["a"]), { type: "op", rev: 0, seq: 1, op: ["a"] });
  assert.equal(c.applyLocal([1, "b"]), null);
  // The server op was committed first, so its "x" lands left of "ab".
  assert.deepEqual(c.applyServer(1, ["x"]), ["x", 2]);
  const next = c.ack(2, 1);
  assert.deepEqual(next, { type: "op", rev: 2, seq: 2, op: [2, "b"] });
});

test("buffered edits that cancel out are not sent", () => {
  const c = new p.OTClient(0, 0);
  c.applyLocal(["a"]);
  c.applyLocal([1, "b"]);
  assert.deepEqual(c.outstanding(), ["ab"]);
  c.applyLocal([1, -1]);
  assert.deepEqual(c.outstanding(), ["a"]);
  assert.equal(c.ack(1, 1), null);
  assert.ok(c.synced());
  assert.equal(c.outstanding(), null);
});

// A Session on a stand-in for the browser's WebSocket, driven by handing
// it server messages.
function fakeSession(opts = {}) {
  const sent = [], events = [];
  globalThis.WebSocket = class { static OPEN = 1; readyState = 1; send(m) { sent.push(JSON.parse(m)); } close() {} };
  const noop = () => {};
  const local = { text: opts.text ?? "" };
  const s = new Session({
    docId: "doc", clientId: "me", name: "me", client: opts.client || null, wsURL: () => "ws://test/api/docs/doc/ws",
    cb: { onStatus: noop, onReset: (t) => { local.text = t; }, onRemote: (op) => { local.text = p.apply(local.text, op); },
      onPeers: noop, onWelcome: noop, onEvent: (e) => events.push(e), onPending: noop, onConflict: () => events.push({ k: "conflict" }), onFatal: noop },
  });
  s.connect();
  // Our own edits: change the local text, then tell the session.
  const edit = (text) => { const op = p.diff(local.text, text); local.text = text; s.edit(op); };
  return { s, sent, events, local, edit };
}

for (const protocol of [1, 2]) {
  test(`a reconnect places peers' carets on the local text (protocol ${protocol})`, () => {
    const { s, sent, local, edit } = fakeSession();
    const other = "00000000-0000-4000-8000-000000000001";
    const who = (id) => (protocol === 2 ? { author: id } : { client: id });
    s.handle({ type: "welcome", protocol, rev: 1, text: "abc", peers: [], lastSeq: 0, ...(protocol === 2 ? { author: "A-me" } : {}) });
    edit("abcX"); // in flight: [3,"X"]
    assert.deepEqual(sent.at(-1), { type: "op", rev: 1, seq: 1, op: [3, "X"] });
    // Reconnected: someone typed "Z" at the start meanwhile, and another
    // editor's caret is after "Za" of the server's "Zabc" (rev 2).
    s.handle({ type: "welcome", protocol, rev: 2, lastSeq: 0, ...(protocol === 2 ? { author: "A-me" } : {}),
      ops: [{ rev: 2, op: ["Z", 3], seq: 1, ...who(other) }],
      peers: [{ name: "o", color: "#000", ranges: [[2, 2]], ...who(other) }] });
    assert.equal(local.text, "ZabcX");
    assert.deepEqual(sent.at(-1), { type: "op", rev: 2, seq: 1, op: [4, "X"] });
    // On the local text the caret is still after "Za", not moved by the
    // catch-up op a second time.
    assert.deepEqual(s.peers.get(other).ranges, [[2, 2]]);
  });
}

test("a catch-up holding our own op in flight acks it (protocol 2 author ids)", () => {
  const { s, sent, local, edit } = fakeSession();
  s.handle({ type: "welcome", protocol: 2, rev: 0, text: "", author: "A-me", peers: [], lastSeq: 0 });
  edit("hi"); // seq 1 in flight
  edit("hi!"); // buffered
  const before = sent.length;
  s.handle({ type: "welcome", protocol: 2, rev: 2, author: "A-me", lastSeq: 1, peers: [],
    ops: [{ rev: 1, op: ["hi"], author: "A-me", seq: 1 }, { rev: 2, op: ["<", 2], author: "B", seq: 7 }] });
  assert.equal(local.text, "<hi!");
  // The buffer went out as seq 2 on the caught-up revision, once.
  assert.deepEqual(sent.slice(before).filter((m) => m.type === "op"), [{ type: "op", rev: 2, seq: 2, op: [3, "!"] }]);
  assert.equal(s.client.pending(), 1);
});

test("replaying the stored log gives the state the page had", () => {
  const { s, events, local, edit } = fakeSession();
  s.handle({ type: "welcome", protocol: 2, rev: 3, text: "abc", author: "A", peers: [], lastSeq: 4 });
  const snap = { text: local.text, client: JSON.parse(JSON.stringify(s.client)) };
  events.length = 0;
  edit("abcd"); // seq 5
  s.handle({ type: "op", rev: 4, op: ["Q", 3], author: "B", seq: 1 });
  edit("Qabcde"); // buffered
  s.handle({ type: "ack", rev: 5, seq: 5 }); // buffer goes out as seq 6
  edit("Qabcdef");
  const { client, op } = p.replay(snap.client, events);
  assert.equal(p.apply(snap.text, op), local.text);
  assert.deepEqual(JSON.parse(JSON.stringify(client)), JSON.parse(JSON.stringify(s.client)));
  assert.equal(client.pending(), 2);
  assert.equal(client.inflight.seq, 6);
});

test("a full-text welcome over unsent edits reports a conflict", () => {
  const c = new p.OTClient(1, 1);
  c.applyLocal([1, "x"]);
  const { s, events, local } = fakeSession({ client: c, text: "ax" });
  s.handle({ type: "welcome", protocol: 2, rev: 5, text: "server", author: "A", peers: [], lastSeq: 1 });
  assert.ok(events.some((e) => e.k === "conflict"));
  assert.equal(local.text, "server");
});

test("our own insert at another editor's caret stays right of it", () => {
  // moveLeft: a peer's caret at 2 in "abcd"; we insert "XY" at 2.
  assert.equal(moveLeft([2, "XY", 2], 2), 2);
  assert.equal(moveLeft([2, "XY", 2], 3), 5);
  assert.equal(moveLeft([1, -2, 1], 2), 1);
  assert.equal(moveLeft([4, "!"], 4), 4);
  assert.equal(moveLeft(["!", 4], 0), 0);
});

test("AstralIndex converts positions and follows edits", () => {
  const astral = Array.from("ab😀漢👩‍💻\n𠀀c");
  for (let round = 0; round < 300; round++) {
    let text = "";
    for (let i = 0; i < rand(30); i++) text += astral[rand(astral.length)];
    const idx = new AstralIndex(text);
    for (let u = 0; u <= text.length; u++) {
      if (u > 0 && u < text.length && (text.charCodeAt(u) & 0xfc00) === 0xdc00 && (text.charCodeAt(u - 1) & 0xfc00) === 0xd800) continue;
      assert.equal(idx.unitToCp(u), p.unitToCp(text, u));
      assert.equal(idx.cpToUnit(p.unitToCp(text, u)), u);
    }
    // A few non-overlapping replacements at pair boundaries, as CodeMirror makes them.
    const cps = Array.from(text), changes = [], inserts = [];
    let at = 0, outU = 0, newText = "", oldU = 0;
    while (at <= cps.length && changes.length < 3) {
      const from = at + rand(Math.max(1, cps.length - at + 1));
      if (from > cps.length) break;
      const to = Math.min(cps.length, from + rand(3));
      const ins = Array.from({ length: rand(3) }, () => astral[rand(astral.length)]).join("");
      const fromA = cps.slice(0, from).join("").length, toA = cps.slice(0, to).join("").length;
      newText += text.slice(oldU, fromA);
      const fromB = newText.length;
      newText += ins;
      changes.push({ fromA, toA, fromB, toB: newText.length });
      inserts.push(ins);
      oldU = toA; at = to + 1; outU = newText.length;
    }
    newText += text.slice(oldU);
    const op = opFromChanges(idx, changes, (k) => inserts[k], text.length);
    assert.equal(p.apply(text, op), newText, JSON.stringify({ text, changes, inserts }));
    // changesFromOp is the way back.
    let viaChanges = text, shift = 0;
    for (const c of changesFromOp(idx, op)) {
      viaChanges = viaChanges.slice(0, c.from + shift) + c.insert + viaChanges.slice(c.to + shift);
      shift += c.insert.length - (c.to - c.from);
    }
    assert.equal(viaChanges, newText);
    idx.map(changes, (a, b) => newText.slice(a, b), newText.length);
    assert.deepEqual(idx.pos, new AstralIndex(newText).pos, JSON.stringify({ text, newText, changes }));
    void outU;
  }
});

test("agrees with the Go ot package", { skip: !process.env.OT_CASES && "OT_CASES not set (run through go test ./frontend)" }, () => {
  const cases = JSON.parse(readFileSync(process.env.OT_CASES, "utf8"));
  assert.ok(cases.length > 0);
  for (const k of cases) {
    const ctx = JSON.stringify(k);
    assert.deepEqual(p.transform(k.a, k.b), [k.a1, k.b1], ctx);
    assert.deepEqual(p.compose(k.a, k.c), k.ac, ctx);
    assert.equal(p.apply(k.text, k.a), k.afterA, ctx);
    assert.deepEqual(k.positions.map((x) => p.transformIndex(k.a, x)), k.movedPositions, ctx);
  }
});

// ---- authors.js ----------------------------------------------------------------
import { authorHue, authorColors, authorClass, runRanges, legend, authorMarker, markChanges } from "../src/authors.js";
// The editor's own copy of @codemirror/state, the one authors.js uses.
import { ChangeSet, RangeSet } from "../src/node_modules/@codemirror/state/dist/index.js";

test("authors: a color depends on the author id alone", () => {
  assert.equal(authorHue("Q4Cs9meoPHKPkzfaudaHZQ"), authorHue("Q4Cs9meoPHKPkzfaudaHZQ"));
  const hues = new Set(["a", "b", "c", "d", "e", "f", "g", "h"].map((x) => authorHue(`author-${x}`)));
  assert.ok(hues.size >= 6, `8 authors share hues: ${[...hues]}`);
  assert.equal(authorColors("").tint, "transparent");
  assert.match(authorClass("-x_9"), /^cm-au-[A-Za-z0-9_-]+$/);
  assert.equal(authorClass("a.b c"), "cm-au-a_b_c");
});

test("authors: runs of code points become UTF-16 ranges, unknown authors left out", () => {
  const text = "ab😀cd👩‍💻e";
  const idx = new AstralIndex(text);
  const cps = Array.from(text).length; // 9 code points
  const runs = [{ author: "A", len: 2 }, { author: "", len: 1 }, { author: "B", len: 3 }, { author: "A", len: cps - 6 }];
  const got = runRanges(runs, idx, text.length);
  assert.deepEqual(got, [[0, 2, "A"], [4, 8, "B"], [8, text.length, "A"]]);
  assert.equal(text.slice(got[1][0], got[1][1]), "cd\u{1F469}");
  // Runs longer than the text shown are clipped.
  assert.deepEqual(runRanges([{ author: "A", len: 50 }], idx, text.length), [[0, text.length, "A"]]);
});

test("authors: the legend names authors, most text first, unknown last", () => {
  const l = legend([{ author: "", len: 9 }, { author: "A", len: 2 }, { author: "B", len: 5 }, { author: "A", len: 1 }],
    { B: "Bob" }, (a) => (a === "A" ? "Ada" : ""));
  assert.deepEqual(l.map((x) => [x.author, x.name, x.len]), [["B", "Bob", 5], ["A", "Ada", 3], ["", "unknown (initial text or before names)", 9]]);
});

test("authors: marks follow edits as one mark per run of an author", () => {
  // A reference label per UTF-16 unit against the marks, through random
  // insertions, deletions and replacements by three authors.
  let seed = 7;
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  const markOf = authorMarker((a) => `cm-au-${a}`);
  const authors = ["A", "B", "C"];
  const runsOf = (labels) => {
    const out = [];
    for (let i = 0; i < labels.length;) {
      let j = i;
      while (j < labels.length && labels[j] === labels[i]) j++;
      if (labels[i]) out.push([i, j, labels[i]]);
      i = j;
    }
    return out;
  };
  for (let trial = 0; trial < 40; trial++) {
    let labels = Array.from({ length: 30 }, (_, i) => ["", "A", "B"][Math.floor(i / 7) % 3]);
    let deco = RangeSet.of(runsOf(labels).map(([f, t, a]) => markOf(a).range(f, t)));
    for (let step = 0; step < 60; step++) {
      const len = labels.length, from = rnd(len + 1), to = Math.min(len, from + (rnd(3) === 0 ? rnd(5) : 0));
      const ins = rnd(4) === 0 ? "" : "xyz".slice(0, 1 + rnd(3));
      if (from === to && !ins) continue;
      const who = authors[rnd(3)];
      const changes = ChangeSet.of([{ from, to, insert: ins }], len);
      labels = [...labels.slice(0, from), ...Array(ins.length).fill(who), ...labels.slice(to)];
      deco = markChanges(deco.map(changes), changes, who, markOf);
      const got = [];
      deco.between(0, labels.length, (f, t, v) => { got.push([f, t, v.spec.class.slice(6)]); });
      assert.deepEqual(got, runsOf(labels), `trial ${trial} step ${step}: ${JSON.stringify({ from, to, ins, who })}`);
    }
  }
});

// ---- markdown.js ---------------------------------------------------------------
import { renderer, render, toggleTask, highlightHTML, splitChunks, rechunk } from "../src/markdown.js";
import { codeLanguages } from "../src/mdlang.js";

test("markdown: tables, task lists, code, links and images", async () => {
  // A language is highlighted once loaded, and asks for a new rendering.
  let asked = 0;
  const md = renderer(() => asked++);
  assert.doesNotMatch(render(md, "```js\nconst x = 1;\n```\n"), /tok-keyword/);
  await Promise.all(codeLanguages.map((d) => d.load()));
  assert.ok(asked >= 1, "no new rendering asked for once the language loaded");
  const html = render(md, "# Notes\n\n- [ ] open\n- [x] done\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```js\nconst x = 1; // hi\n```\n\n[site](https://example.org) ![cat](https://example.org/cat.png)\n");
  assert.match(html, /<h1 data-line="0">Notes<\/h1>/);
  assert.match(html, /<input type="checkbox" class="task" data-line="2" aria-label="Done"> open/);
  assert.match(html, /<input type="checkbox" class="task" data-line="3" checked aria-label="Done"> done/);
  assert.match(html, /<table data-line="5">/);
  assert.doesNotMatch(render(md, "| a | b |\n|:-:|--:|\n| 1 | 2 |\n"), /style=/);
  assert.match(render(md, "| a |\n|:-:|\n| 1 |\n"), /<th class="align-center">a<\/th>/);
  assert.match(html, /<span class="tok-keyword">const<\/span>/);
  assert.match(html, /<a href="https:\/\/example.org">site<\/a>/);
  assert.match(html, /<img src="https:\/\/example.org\/cat.png" alt="cat">/);
});

test("markdown: hostile documents render no markup of their own", () => {
  const md = renderer();
  const hostile = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))", "[x](JaVaScRiPt:alert(1))",
    "![x](javascript:alert(1))", "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)", "<iframe src=//evil>",
    "```js\n</code></pre><script>alert(1)</script>\n```", "```\"><script>alert(1)</script>\nx\n```", "<a href=\"x\" onclick=\"alert(1)\">y</a>",
    "- [ ] <img src=x onerror=alert(1)>", "[a](vbscript:msgbox(1))",
  ];
  for (const doc of hostile) {
    const html = render(md, doc);
    assert.doesNotMatch(html, /<(script|iframe|img[^>]*onerror)/i, `${doc} -> ${html}`);
    assert.doesNotMatch(html, /href="(javascript|vbscript|data):/i, `${doc} -> ${html}`);
    assert.doesNotMatch(html, /<[^>]*\son[a-z]+=/i, `${doc} -> ${html}`);
  }
  assert.equal(highlightHTML("<b>", "nope"), "");
});

test("markdown: chunks render as the whole text does", () => {
  // Random documents of every kind of block, blank lines anywhere: the
  // chunks' renderings, each with its first line, joined, are the whole
  // text's rendering, and the chunks are the text cut in order.
  const md = renderer();
  let seed = 11;
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  const blocks = [
    () => "# Title *em*", () => "para with `code` and **bold**\nsecond line", () => "- a\n- b", () => "- a\n\n- loose",
    () => "1. one\n2. two", () => "3) three", () => "  indented", () => "    code block", () => "```js\nconst x = 1;\n\nx\n```",
    () => "~~~\nfence\n\n~~~~", () => "```\nunclosed\n\nstill code", () => "> quote\n> more", () => "| a | b |\n|---|---|\n| 1 | 2 |",
    () => "- [ ] task\n- [x] done", () => "---", () => "text\n===", () => "- item\n\n  continued", () => "* star", () => "+ plus",
    () => "- ```\n  fenced in item\n\n  more", () => "> ```\n> quoted fence", () => "<div>raw</div>", () => "https://example.org",
    () => "", () => "", () => "",
  ];
  for (let trial = 0; trial < 300; trial++) {
    const parts = [];
    for (let i = 0, n = 5 + rnd(40); i < n; i++) parts.push(blocks[rnd(blocks.length)]());
    const text = parts.join(rnd(3) ? "\n\n" : "\n") + (rnd(2) ? "\n" : "");
    for (const max of [1, 3, 60]) {
      const chunks = splitChunks(text, max);
      assert.equal(chunks.map((c) => c.text).join(""), text);
      let line = 0;
      for (const c of chunks) {
        assert.equal(c.line, line);
        line += c.text.split("\n").length - 1;
      }
      assert.equal(chunks.map((c) => render(md, c.text, c.line)).join(""), render(md, text), `max ${max}, text:\n${text}`);
      if (max === 1 && trial === 0) assert.ok(chunks.length > 1, "a varied text was never cut");
    }
  }
  // Link reference definitions apply across the text: no cut.
  assert.equal(splitChunks("[a]\n\n".repeat(10) + "[a]: https://example.org\n", 1).length, 1);
});

test("markdown: chunks kept through edits still render as the whole text does", () => {
  // Random edits of a random document, the chunks carried from one text
  // to the next by rechunk: they still join to the text and render as it
  // does, and an edit within one chunk of a long text re-cuts a few.
  const md = renderer();
  let seed = 5;
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  const pieces = ["x", "\n", "\n\n", "- ", "```", "```\n", "    ", "> ", "# h\n\n", "para text\n\n", "1. ", "[r]: https://e.org\n", "~~~\n"];
  for (let trial = 0; trial < 60; trial++) {
    let text = "";
    for (let i = 0; i < 60; i++) text += ["# T", "para\nline", "- a\n- b", "```\ncode\n\nmore\n```", "> q", "  indented"][rnd(6)] + "\n\n";
    let chunks = splitChunks(text, 4);
    for (let step = 0; step < 40; step++) {
      const at = rnd(text.length + 1), del = rnd(4) === 0 ? rnd(12) : 0;
      const ins = rnd(5) === 0 ? "" : pieces[rnd(pieces.length)];
      text = text.slice(0, at) + ins + text.slice(at + del);
      const r = rechunk(chunks, text, 4);
      chunks = r.chunks;
      assert.equal(chunks.map((c) => c.text).join(""), text, `trial ${trial} step ${step}`);
      let line = 0;
      for (const c of chunks) { assert.equal(c.line, line); line += c.text.split("\n").length - 1; }
      assert.equal(chunks.map((c) => render(md, c.text, c.line)).join(""), render(md, text), `trial ${trial} step ${step}:\n${text}`);
    }
  }
  // One character typed in the middle of a long text: the chunks around
  // it are kept.
  const long = "para\nline\n\n".repeat(2000);
  const before = splitChunks(long);
  const mid = long.length >> 1;
  const r = rechunk(before, long.slice(0, mid) + "x" + long.slice(mid));
  assert.ok(before.length > 50 && r.keep + (before.length - r.from) >= before.length - 2, `kept ${r.keep} + ${before.length - r.from} of ${before.length}`);
  const r2 = rechunk(before, long.slice(0, mid) + "\n\n" + long.slice(mid));
  assert.ok(r2.keep + (before.length - r2.from) >= before.length - 2, `after a new paragraph, kept ${r2.keep} + ${before.length - r2.from} of ${before.length}`);
});

test("markdown: a task box toggles its own line", () => {
  const text = "intro\n- [ ] one\n  * [x] two\n1. [ ] three\nnot [ ] a task";
  const apply = (s, c) => s.slice(0, c.from) + c.insert + s.slice(c.to);
  assert.equal(apply(text, toggleTask(text, 1)), text.replace("- [ ] one", "- [x] one"));
  assert.equal(apply(text, toggleTask(text, 2)), text.replace("* [x] two", "* [ ] two"));
  assert.equal(apply(text, toggleTask(text, 3)), text.replace("1. [ ] three", "1. [x] three"));
  assert.equal(toggleTask(text, 4), null);
  assert.equal(toggleTask(text, 0), null);
  assert.equal(toggleTask(text, 9), null);
});

// ---- titles, file names, exports -----------------------------------------------------
import { titleOf, fileName } from "../src/common.js";
import { standaloneHTML } from "../src/export.js";

test("titles and file names carry no Markdown marks", () => {
  for (const [line, want] of [
    ["# Meeting notes", "Meeting notes"], ["## Plan ##", "Plan"], ["> quoted **bold** idea", "quoted bold idea"],
    ["- [ ] todo: *ship* it", "todo: ship it"], ["1. First `step`", "First step"], ["[Spec](https://x.org/a) v2", "Spec v2"],
    ["![logo](x.png) Brand", "logo Brand"], ["#hashtag stays", "#hashtag stays"], ["snake_case_name", "snake_case_name"],
    ["~~old~~ new", "old new"], ["   ", "Untitled"], ["#", "Untitled"],
  ]) assert.equal(titleOf(`${line}\nbody`), want, line);
  assert.equal(fileName("# Meeting notes", "txt"), "Meeting notes.txt");
  assert.equal(fileName("## a/b: c?", "md"), "a-b- c-.md");
  assert.equal(fileName("", "html"), "document.html");
  assert.equal(fileName("../../etc", "txt"), "etc.txt");
});

test("the exported web page escapes its title and allows no script", () => {
  const page = standaloneHTML("<script>x</script> & notes", "<h1>Hi</h1>");
  assert.match(page, /<title>&lt;script&gt;x&lt;\/script&gt; &amp; notes<\/title>/);
  assert.match(page, /Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src https: data:"/);
  assert.match(page, /<style>[^<]*h1 \{/);
  assert.doesNotMatch(page, /<script|<link/);
});
