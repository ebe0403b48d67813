// The SDK against a real collabd, in Node: run by cmd/collabd's TestSDKNode
// (sdk_test.go), which starts the servers and passes their URLs:
//   COLLABD_URL       an open server
//   COLLABD_AUTH_URL  a server with access tokens (HS256, -auth-leeway 0s)
//   COLLABD_SECRET    its secret
// The module under test is the built file collabd serves at /sdk/.

import test from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import WebSocket from "ws";
import "fake-indexeddb/auto";
import { CollabDocument, CollabViewer, CollabAPI, CollabError, indexedDBPersistence, apply, applyReference, cpLen } from "collabd";

const server = process.env.COLLABD_URL;
const authServer = process.env.COLLABD_AUTH_URL;
const secret = process.env.COLLABD_SECRET;
if (!server) throw new Error("COLLABD_URL is not set: run through go test ./cmd/collabd -run TestSDKNode");

const api = new CollabAPI({ server });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// until polls cond until it holds, or fails after ms.
async function until(cond, what, ms = 10000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

// Sockets records every WebSocket the SDK opens, so that a test can cut
// them as a network failure would (terminate: no close frame), and
// refuse new ones while "offline".
function droppable() {
  const open = new Set();
  let down = false;
  class Sock extends WebSocket {
    constructor(url) {
      super(down ? url.replace(/^ws:\/\/[^/]+/, "ws://127.0.0.1:9") : url);
      open.add(this);
      this.addEventListener("close", () => open.delete(this));
    }
  }
  return {
    WebSocket: Sock,
    drop() { for (const s of open) s.terminate(); },
    set offline(v) { down = v; },
    get count() { return open.size; },
  };
}

function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const head = b64({ alg: "HS256", typ: "JWT" }), body = b64(claims);
  const sig = crypto.createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

async function serverText(id) { return (await api.get(id)).text; }

test("open, edit by code point, change events with their author", async () => {
  const { id } = await api.create("h😀llo");
  const a = await CollabDocument.open({ server, id, name: "Ada", WebSocket });
  const b = await CollabDocument.open({ server: server + "/", id, name: "Bob", WebSocket });
  try {
    assert.equal(a.text, "h😀llo");
    assert.equal(a.rev, 1);
    const seen = [];
    b.on("change", (c) => seen.push(c));
    a.insert(2, "é"); // after the emoji: code points, not UTF-16 units
    a.delete(0, 1);
    assert.equal(a.text, "😀éllo");
    assert.throws(() => a.insert(99, "x"), RangeError);
    assert.throws(() => a.delete(4, 5), RangeError);
    await a.synced();
    await until(() => b.rev === a.rev, "b to reach a's revision");
    assert.equal(b.text, "😀éllo");
    assert.ok(seen.length >= 1 && seen.every((c) => !c.local && c.author === a.author), `changes ${JSON.stringify(seen)} by ${a.author}`);
    let t = "h😀llo";
    for (const c of seen) t = apply(t, c.op);
    assert.equal(t, b.text, "the change events replay to the text");
    assert.equal(await serverText(id), "😀éllo");
  } finally { a.close(); b.close(); }
});

test("presence: selections reach the others, moved through edits", async () => {
  const { id } = await api.create("abcdef");
  const a = await CollabDocument.open({ server, id, name: "Ada", WebSocket });
  const b = await CollabDocument.open({ server, id, name: "Bob", WebSocket });
  try {
    let peers = [];
    b.on("presence", (p) => { peers = p; });
    a.setSelection([[2, 4]]);
    await until(() => peers.some((p) => p.name === "Ada" && p.ranges.length === 1 && p.ranges[0][0] === 2 && p.ranges[0][1] === 4), "Ada's selection");
    assert.equal(peers.find((p) => p.name === "Ada").author, a.author);
    b.insert(0, "XY");
    assert.deepEqual(b.peers.find((p) => p.name === "Ada").ranges, [[4, 6]], "moved through Bob's own insert");
  } finally { a.close(); b.close(); }
});

test("concurrent editors converge, through drops and reconnects", async () => {
  const { id } = await api.create("");
  const nets = [droppable(), droppable(), droppable()];
  const docs = await Promise.all(nets.map((n, i) => CollabDocument.open({ server, id, name: `E${i}`, WebSocket: n.WebSocket })));
  try {
    let seed = 7;
    const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    const alphabet = ["a", "b", "é", "😀", "字", "\n"];
    for (let round = 0; round < 30; round++) {
      for (const d of docs) {
        const n = d.length;
        if (n > 0 && rnd(3) === 0) { const p = rnd(n); d.delete(p, Math.min(1 + rnd(3), n - p)); }
        else d.insert(rnd(n + 1), alphabet[rnd(alphabet.length)] + alphabet[rnd(alphabet.length)]);
      }
      if (round % 7 === 3) nets[round % 3].drop(); // cut mid-flight; the SDK reconnects and resumes
      await sleep(rnd(15));
    }
    await Promise.all(docs.map((d) => d.synced()));
    const head = (await api.get(id)).rev;
    await until(() => docs.every((d) => d.rev === head), "every editor at the head");
    const text = await serverText(id);
    for (const d of docs) assert.equal(d.text, text);
    // Nothing applied twice: the log's seqs of each author have no repeat.
    const ops = await api.ops(id, 0);
    const seen = new Set();
    for (const r of ops) {
      const k = `${r.author}/${r.seq}`;
      assert.ok(!r.author || !seen.has(k), `op ${k} applied twice`);
      seen.add(k);
    }
  } finally { docs.forEach((d) => d.close()); }
});

test("edits made offline are sent once the network is back", async () => {
  const { id } = await api.create("start");
  const net = droppable();
  const d = await CollabDocument.open({ server, id, WebSocket: net.WebSocket });
  try {
    const statuses = [];
    d.on("status", (s) => statuses.push(s));
    net.offline = true;
    net.drop();
    await until(() => d.status === "offline", "offline");
    d.insert(5, " offline");
    d.delete(0, 1);
    assert.equal(d.pending > 0, true);
    await sleep(300);
    assert.equal(await serverText(id), "start", "nothing reached the server while offline");
    net.offline = false;
    d.reconnect();
    await d.synced();
    assert.equal(await serverText(id), "tart offline");
    assert.ok(statuses.includes("live"));
  } finally { d.close(); }
});

test("offline persistence (IndexedDB): a closed session's unsent edits are resent by the next", async () => {
  const { id } = await api.create("abc");
  const net = droppable();
  const first = await CollabDocument.open({ server, id, WebSocket: net.WebSocket, persistence: indexedDBPersistence() });
  const clientId = first.clientId;
  net.offline = true;
  net.drop();
  await until(() => first.status === "offline", "offline");
  first.insert(3, "def");
  first.insert(0, ">");
  first.close(); // the tab closes with two edits unsent
  await sleep(50);
  assert.equal(await serverText(id), "abc");
  const second = await CollabDocument.open({ server, id, WebSocket, persistence: indexedDBPersistence() });
  try {
    assert.equal(second.clientId, clientId, "the stored client is adopted");
    await second.synced();
    assert.equal(second.text, ">abcdef");
    assert.equal(await serverText(id), ">abcdef");
  } finally { second.close(); }
});

test("load() restores unsent edits without connecting; connect() sends them", async () => {
  const { id } = await api.create("abc");
  const net = droppable();
  const first = await CollabDocument.open({ server, id, WebSocket: net.WebSocket, persistence: indexedDBPersistence() });
  net.offline = true;
  net.drop();
  await until(() => first.status === "offline", "offline");
  first.insert(3, " 😀");
  first.close();
  await sleep(50);
  // As the editor page opens: what the store holds first, no socket yet.
  const opened = [];
  class Counting extends WebSocket { constructor(url) { super(url); opened.push(url); } }
  const second = new CollabDocument({ server, id, WebSocket: Counting, persistence: indexedDBPersistence() });
  try {
    assert.equal(second.editable, false);
    assert.throws(() => second.insert(0, "x"), (e) => e instanceof CollabError && e.code === "not_ready");
    assert.equal(await second.load(), true, "a stored state is restored");
    assert.equal(second.text, "abc 😀");
    assert.equal(second.length, 5);
    assert.equal(second.pending, 1);
    assert.equal(second.editable, true);
    second.insert(5, "!"); // edited offline, before any connection
    assert.equal(opened.length, 0, "load() opens no connection");
    const welcomes = [], pendings = [];
    second.on("welcome", (w) => welcomes.push(w));
    second.on("pending", (n) => pendings.push(n));
    await second.connect();
    await second.synced();
    assert.equal(opened.length, 1);
    assert.equal(welcomes.length, 1);
    assert.equal(typeof welcomes[0].viewId, "string");
    assert.equal(pendings.at(-1), 0);
    assert.equal(await serverText(id), "abc 😀!");
  } finally { second.close(); }
});

test("the text stays exact through many scattered edits (ops composed until read)", async () => {
  const { id } = await api.create("");
  const doc = await CollabDocument.open({ server, id, WebSocket });
  const other = await CollabDocument.open({ server, id, WebSocket });
  try {
    let mirror = [];
    let seed = 7;
    const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    for (let i = 0; i < 3000; i++) {
      // Reads now and then only: hundreds of ops are composed between them.
      if (i % 997 === 0) assert.equal(doc.text, mirror.join(""));
      if (mirror.length > 10 && rnd(3) === 0) {
        const p = rnd(mirror.length - 2), n = 1 + rnd(2);
        doc.delete(p, n);
        mirror.splice(p, n);
      } else {
        const p = rnd(mirror.length + 1), t = ["a", "ö", "😀", "字", "🎉x"][rnd(5)];
        doc.insert(p, t);
        mirror.splice(p, 0, ...Array.from(t));
      }
      assert.equal(doc.length, mirror.length);
    }
    assert.equal(doc.text, mirror.join(""));
    await doc.synced();
    await until(() => other.rev === doc.rev, "the other editor at the head");
    assert.equal(other.text, mirror.join(""));
    assert.equal(await serverText(id), mirror.join(""));
  } finally { doc.close(); other.close(); }
});

test("a viewer follows over SSE, resuming after a drop", async () => {
  const { id, viewId } = await api.create("one");
  const v = await CollabViewer.open({ server, viewId });
  const d = await CollabDocument.open({ server, id, WebSocket });
  try {
    assert.equal(v.text, "one");
    const changes = [];
    v.on("change", (c) => changes.push(c));
    d.insert(3, " two");
    await d.synced();
    await until(() => v.text === "one two", "the viewer to see the edit");
    assert.equal(v.rev, d.rev);
    v._abort.abort(); // a dropped stream: the viewer resumes with Last-Event-ID
    d.insert(7, " three");
    await d.synced();
    await until(() => v.text === "one two three", "the viewer to resume");
    assert.ok(changes.every((c) => !c.reset), "resumed with ops, not a snapshot");
  } finally { v.close(); d.close(); }
});

test("HTTP writes and history helpers", async () => {
  const { id } = await api.create("hello");
  const d = await CollabDocument.open({ server, id, WebSocket });
  try {
    const w = await api.postOp(id, { rev: 1, op: [5, " world"], name: "bot" });
    assert.equal(w.rev, 2);
    await until(() => d.text === "hello world", "the editor to get the HTTP write");
    const p = await api.putText(id, { rev: 2, text: "Hello world!", name: "bot" });
    assert.ok(p.run);
    await until(() => d.text === "Hello world!", "the PUT /text write");
    await assert.rejects(api.postOp(id, { rev: 1, op: [5, "x"], strict: true }), (e) => e instanceof CollabError && e.code === "conflict" && e.status === 409);
    const revs = await d.revisions();
    assert.equal(revs[revs.length - 1].rev, d.rev);
    assert.equal(await d.textAt(2), "hello world");
    const ops = await d.ops(1);
    assert.equal(ops[0].rev, 2);
    await assert.rejects(CollabDocument.open({ server, id: crypto.randomUUID(), WebSocket }), (e) => e.code === "not_found");
  } finally { d.close(); }
});

test("token refresh: the session moves to a fresh token before exp", { skip: !authServer && "no COLLABD_AUTH_URL" }, async () => {
  const create = new CollabAPI({ server: authServer, token: jwt({ doc: "*", role: "create", exp: Math.floor(Date.now() / 1000) + 60 }) });
  const { id } = await create.create("t");
  await assert.rejects(CollabDocument.open({ server: authServer, id, WebSocket }), (e) => e instanceof CollabError);
  let asked = 0;
  const mint = (life) => jwt({ doc: id, role: "edit", name: "Tok", exp: Math.floor(Date.now() / 1000) + life });
  const d = await CollabDocument.open({
    server: authServer, id, WebSocket, token: mint(2),
    getToken: async () => { asked++; return mint(60); },
  });
  try {
    const statuses = [];
    d.on("status", (s) => statuses.push(s));
    await until(() => asked === 1, "the refresh callback", 5000);
    await sleep(2500); // past the first token's exp
    d.insert(1, "ok");
    await d.synced();
    assert.equal(d.text, "tok");
    assert.ok(!statuses.includes("offline"), `the session went offline: ${statuses}`);
  } finally { d.close(); }
});

test("apply (chunked, by regular expression) agrees with the pages' apply", () => {
  assert.equal(cpLen("a😀字"), 3);
  // Lone surrogates count one code point each, as cpLen and the server do.
  const al = ["a", "é", "😀", "\uD800", "\uDC00", "字", "\n"];
  let seed = 1;
  const r = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  for (let t = 0; t < 20000; t++) {
    let s = "";
    for (let i = r(12); i > 0; i--) s += al[r(al.length)];
    const op = [];
    for (let i = 0, n = cpLen(s); i < n;) {
      const k = 1 + r(Math.min(4, n - i)), c = r(3);
      if (c === 2) { op.push(al[r(3)]); continue; }
      op.push(c === 0 ? k : -k);
      i += k;
    }
    assert.equal(apply(s, op), applyReference(s, op), `${JSON.stringify(s)} ${JSON.stringify(op)}`);
  }
  assert.throws(() => apply("ab", [3]), CollabError);
  assert.throws(() => apply("a😀", [1]), CollabError);
});
