// converge.mjs: the Node half of cmd/collabd's TestSDKConvergesWithGo.
// COLLABD_URL and DOC name the server and document; Go clients edit it at
// the same time. The script types EDITS random edits in N SDK documents,
// cutting their connections now and then, then prints "@typed" and waits
// for a line "@head REV" on stdin (the Go side has stopped and knows the
// head), and prints "@text" and each document's final text as JSON once
// all are at REV with nothing unacknowledged.

import WebSocket from "ws";
import readline from "node:readline";
import { CollabDocument } from "collabd";

const server = process.env.COLLABD_URL, id = process.env.DOC;
const n = Number(process.env.N || 2), edits = Number(process.env.EDITS || 100);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const socks = new Set();
class Sock extends WebSocket {
  constructor(url) { super(url); socks.add(this); this.addEventListener("close", () => socks.delete(this)); }
}

const docs = await Promise.all(Array.from({ length: n }, (_, i) => CollabDocument.open({ server, id, name: `node${i}`, WebSocket: Sock })));
let seed = 99;
const rnd = (k) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % k; };
const alphabet = ["x", "y", "ü", "😀", "\n"];
for (let e = 0; e < edits; e++) {
  const d = docs[e % n];
  const len = d.length;
  if (len > 4 && rnd(3) === 0) { const p = rnd(len); d.delete(p, Math.min(1 + rnd(2), len - p)); }
  else d.insert(rnd(len + 1), alphabet[rnd(alphabet.length)]);
  if (e % 37 === 36) for (const s of socks) { s.terminate(); break; }
  await sleep(rnd(4));
}
await Promise.all(docs.map((d) => d.synced()));
console.log("@typed");

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const m = /^@head (\d+)$/.exec(line);
  if (!m) continue;
  const head = Number(m[1]);
  const end = Date.now() + 20000;
  while (!docs.every((d) => d.rev === head && d.pending === 0)) {
    if (Date.now() > end) { console.log("@stuck", JSON.stringify(docs.map((d) => [d.rev, d.pending]))); process.exit(1); }
    await sleep(10);
  }
  console.log("@text", JSON.stringify(docs.map((d) => d.text)));
  break;
}
docs.forEach((d) => d.close());
process.exit(0);
