// Tests of protocol.js with Node's test runner: properties over random
// texts with emoji, and agreement with the Go ot package on cases that
// frontend/protocol_test.go generates (OT_CASES names the file).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as p from "../static/protocol.js";

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

// A Session on stand-ins for the browser's WebSocket, sessionStorage and
// location, driven by handing it server messages.
function fakeSession() {
  const sent = [];
  globalThis.location = { protocol: "http:", host: "test" };
  globalThis.sessionStorage = { getItem: () => null, setItem() {} };
  globalThis.WebSocket = class { static OPEN = 1; readyState = 1; send(m) { sent.push(JSON.parse(m)); } close() {} };
  const noop = () => {};
  const s = new p.Session("doc", "me", { onStatus: noop, onReset: noop, onRemote: noop, onPeers: noop, onWelcome: noop });
  return { s, sent };
}

test("a reconnect places peers' carets on the local text", () => {
  const { s, sent } = fakeSession();
  const other = "b3RoZXItYXV0aG9yLWlk";
  s.handle({ type: "welcome", protocol: 2, rev: 1, text: "abc", author: "bWUtYXV0aG9yLWlkLXh4", peers: [], lastSeq: 0 });
  s.edit("abcX"); // in flight: [3,"X"]
  assert.deepEqual(sent.at(-1), { type: "op", rev: 1, seq: 1, op: [3, "X"] });
  // Reconnected: someone typed "Z" at the start meanwhile, and another
  // editor's caret is after "Za" of the server's "Zabc" (rev 2).
  s.handle({ type: "welcome", protocol: 2, rev: 2, lastSeq: 0, author: "bWUtYXV0aG9yLWlkLXh4",
    ops: [{ rev: 2, op: ["Z", 3], author: other, seq: 1 }],
    peers: [{ author: other, name: "o", color: "#000", ranges: [[2, 2]] }] });
  assert.equal(s.text, "ZabcX");
  assert.deepEqual(sent.at(-1), { type: "op", rev: 2, seq: 1, op: [4, "X"] });
  // On the local text the caret is still after "Za", not moved by the
  // catch-up op a second time.
  assert.deepEqual(s.peers.get(other).ranges, [[2, 2]]);
});

test("a catch-up op with our author id and in-flight seq is our ack", () => {
  const { s, sent } = fakeSession();
  const me = "bWUtYXV0aG9yLWlkLXh4";
  s.handle({ type: "welcome", protocol: 2, rev: 1, text: "abc", author: me, peers: [], lastSeq: 0 });
  s.edit("abcX");
  const n = sent.length;
  // The server applied it before the connection dropped: the catch-up
  // holds it, under our author id, and nothing is resent or applied twice.
  s.handle({ type: "welcome", protocol: 2, rev: 2, lastSeq: 1, author: me,
    ops: [{ rev: 2, op: [3, "X"], author: me, seq: 1 }], peers: [] });
  assert.equal(s.text, "abcX");
  assert.ok(s.client.synced());
  assert.equal(s.client.rev, 2);
  assert.equal(sent.length, n);
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
