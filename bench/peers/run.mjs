// run.mjs: `make bench-peers`. The same full-client editing load against
// collabd and against ShareDB (in memory, one Node thread), one server at
// a time, and the server's CPU per op side by side, read from /proc.
//
//	node run.mjs [-loads 50x5,100x2,200x5] [-duration 20] [-rounds 1]
//	             [-collabd ../../bin/collabd[,other]] [-only collabd|sharedb] [-smoke]
//
// A load EDITORSxRATE is that many editors on one document, each typing
// RATE keystrokes a second at a random place. Every editor is a full
// client: it applies every other editor's op to its own text, transforming
// over what it has not had acknowledged (collabd: frontend/src/protocol.js,
// the browser's own OT client; ShareDB: its own client library). An editor
// times one keystroke at a time, from the local edit to its ack. At the
// end, every editor must hold the same text, of the length typed.
//
// CPU is the server process's user+system time (/proc/PID/stat) from the
// first keystroke to the moment every editor has converged after the
// last; an op is a revision the server made (collabd's revision, ShareDB's
// version), composed keystrokes counting once. collabd fsyncs every commit
// before its ack (the I/O wait is not CPU); ShareDB keeps everything in
// memory. With -rounds N, each load runs N times, the servers taking
// turns, so that they share the machine's moods. -collabd takes several
// binaries, comma-separated (a before and an after), each run in turn.
import { spawn, execFileSync } from "node:child_process";
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir, loadavg } from "node:os";
import { join, dirname, basename } from "node:path";
import { fileURLToPath } from "node:url";
import { randomUUID } from "node:crypto";
import WebSocket from "ws";
import ShareDBClient from "sharedb/lib/client/index.js";
import { OTClient, apply } from "../../frontend/src/protocol.js";

const here = dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const a = { loads: "50x5,100x2,200x5", duration: 20, settle: 15, rounds: 1, collabd: join(here, "../../bin/collabd"), only: "", smoke: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--?/, "");
    if (k === "smoke") { a.smoke = true; continue; }
    if (!(k in a) || i + 1 >= argv.length) throw new Error(`unknown or incomplete flag ${argv[i]}`);
    a[k] = typeof a[k] === "number" ? Number(argv[++i]) : argv[++i];
  }
  if (a.smoke) { a.loads = "4x4"; a.duration = 2; a.settle = 10; }
  a.loads = a.loads.split(",").map((s) => {
    const m = /^(\d+)x(\d+(?:\.\d+)?)$/.exec(s.trim());
    if (!m) throw new Error(`-loads: ${s} is not EDITORSxRATE`);
    return { editors: Number(m[1]), rate: Number(m[2]) };
  });
  if (!(a.duration > 0) || !(a.rounds >= 1)) throw new Error("-duration and -rounds must be positive");
  return a;
}

// ---- the server process ---------------------------------------------------

const clk = (() => { try { return Number(execFileSync("getconf", ["CLK_TCK"]).toString()) || 100; } catch { return 100; } })();

// cpuOf returns a process's user+system CPU in seconds.
function cpuOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / clk; // utime, stime
}

function rssOf(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

// start runs cmd and resolves once a line of its stdout matches re.
function start(cmd, args, re, cleanup) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    const timer = setTimeout(() => { p.kill(); reject(new Error(`${cmd} did not start: ${out}`)); }, 15000);
    p.on("error", (e) => { clearTimeout(timer); reject(e); });
    p.on("exit", (code) => { clearTimeout(timer); reject(new Error(`${cmd} exited ${code}: ${out}`)); });
    p.stdout.on("data", (d) => {
      out += d;
      const m = re.exec(out);
      if (m) {
        clearTimeout(timer);
        p.stdout.removeAllListeners("data");
        p.stdout.resume();
        const stop = () => new Promise((res) => {
          p.removeAllListeners("exit");
          if (p.exitCode !== null) { cleanup?.(); res(); return; }
          p.on("exit", () => { cleanup?.(); res(); });
          p.kill("SIGTERM");
        });
        resolve({ pid: p.pid, match: m, stop });
      }
    });
  });
}

// The lifted per-address limits of `make load` (every client is 127.0.0.1).
const collabdArgs = ["-max-conns-per-addr", "100000", "-max-conns", "100000", "-max-tcp-conns-per-addr", "100000",
  "-max-tcp-conns", "100000", "-create-burst", "100000", "-write-rate", "-1", "-max-editors", "2000",
  "-rate-limit", "1000000", "-rate-burst", "1000000", "-log-level", "warn"];

async function startCollabd(bin) {
  const dir = mkdtempSync(join(tmpdir(), "bench-peers-"));
  const s = await start(bin, ["-addr", "127.0.0.1:0", "-data", join(dir, "bench.db"), ...collabdArgs],
    /listening on (http:\/\/[0-9.:]+)/, () => rmSync(dir, { recursive: true, force: true }));
  return { ...s, url: s.match[1] };
}

async function startShareDB() {
  const s = await start(process.execPath, [join(here, "sharedb-server.mjs"), "0"], /listening (\d+)/);
  return { ...s, url: `http://127.0.0.1:${s.match[1]}` };
}

// ---- editors ----------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const letters = "abcdefghijklmnopqrstuvwxyz";

// A collabd editor: the browser's OTClient over the wire protocol.
class CollabdEditor {
  constructor(url, docId, stats) {
    this.stats = stats; this.text = ""; this.client = null; this.timing = null;
    this.ws = new WebSocket(`${url.replace(/^http/, "ws")}/api/docs/${docId}/ws`);
    this.ready = new Promise((resolve, reject) => {
      this.ws.on("open", () => this.ws.send(JSON.stringify({ type: "hello", client: randomUUID(), name: "bench" })));
      this.ws.on("error", reject);
      this.ws.on("close", (code) => { if (!this.closing) stats.errors.push(`collabd closed ${code}`); });
      this.ws.on("message", (data) => {
        const msgs = JSON.parse(data);
        for (const m of Array.isArray(msgs) ? msgs : [msgs]) {
          if (m.type === "welcome") {
            this.text = m.text ?? "";
            for (const r of m.ops ?? []) this.text = apply(this.text, r.op);
            this.client = new OTClient(m.rev, m.lastSeq ?? 0);
            resolve();
          } else if (m.type === "op") {
            this.text = apply(this.text, this.client.applyServer(m.rev, m.op));
          } else if (m.type === "ack") {
            const next = this.client.ack(m.rev, m.seq);
            if (this.timing && this.timing.seq === m.seq) {
              stats.lat.push(performance.now() - this.timing.t0);
              this.timing = null;
            }
            if (next) this.ws.send(JSON.stringify(next));
          } else if (m.type === "error") {
            stats.errors.push(`collabd: ${m.code}: ${m.message}`);
          }
        }
      });
    });
  }
  type() {
    const n = this.text.length, pos = Math.floor(Math.random() * (n + 1));
    const op = [];
    if (pos > 0) op.push(pos);
    op.push(letters[Math.floor(Math.random() * letters.length)]);
    if (n - pos > 0) op.push(n - pos);
    this.text = apply(this.text, op);
    const t0 = performance.now();
    const msg = this.client.applyLocal(op);
    if (msg) {
      if (!this.timing) this.timing = { seq: msg.seq, t0 };
      this.ws.send(JSON.stringify(msg));
    }
  }
  synced() { return this.client.synced(); }
  rev() { return this.client.rev; }
  close() { this.closing = true; this.ws.close(1000); }
}

// A ShareDB editor: ShareDB's own client, a json0 document {t: text}.
class ShareDBEditor {
  constructor(url, docId, stats, create) {
    this.stats = stats; this.timed = false;
    this.ws = new WebSocket(url.replace(/^http/, "ws"));
    this.conn = new ShareDBClient.Connection(this.ws);
    this.doc = this.conn.get("bench", docId);
    this.ready = new Promise((resolve, reject) => {
      this.doc.subscribe((err) => {
        if (err) { reject(err); return; }
        if (this.doc.type || !create) { resolve(); return; }
        this.doc.create({ t: "" }, (err) => (err ? reject(err) : resolve()));
      });
    });
    this.doc.on("error", (e) => stats.errors.push(`sharedb: ${e.message}`));
  }
  get text() { return this.doc.data.t; }
  type() {
    const n = this.doc.data.t.length, pos = Math.floor(Math.random() * (n + 1));
    const t0 = performance.now(), timed = !this.timed;
    if (timed) this.timed = true;
    this.doc.submitOp([{ p: ["t", pos], si: letters[Math.floor(Math.random() * letters.length)] }], (err) => {
      if (err) { this.stats.errors.push(`sharedb submit: ${err.message}`); return; }
      if (timed) { this.stats.lat.push(performance.now() - t0); this.timed = false; }
    });
  }
  synced() { return !this.doc.hasWritePending(); }
  rev() { return this.doc.version; }
  close() { this.conn.close(); }
}

async function createCollabdDoc(url) {
  const r = await fetch(`${url}/api/docs`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  if (r.status !== 201) throw new Error(`POST /api/docs: ${r.status}`);
  return (await r.json()).id;
}

// ---- one run ------------------------------------------------------------------

async function runLoad(kind, server, { editors: n, rate }, args) {
  const stats = { lat: [], errors: [] };
  let eds;
  if (kind === "collabd") {
    const id = await createCollabdDoc(server.url);
    eds = [];
    for (let i = 0; i < n; i++) eds.push(new CollabdEditor(server.url, id, stats));
  } else {
    const id = randomUUID();
    const first = new ShareDBEditor(server.url, id, stats, true);
    await first.ready;
    eds = [first];
    for (let i = 1; i < n; i++) eds.push(new ShareDBEditor(server.url, id, stats, false));
  }
  await Promise.all(eds.map((e) => e.ready));
  await sleep(500);
  const rev0 = Math.max(...eds.map((e) => e.rev()));
  const load0 = loadavg()[0], cpu0 = cpuOf(server.pid), self0 = process.cpuUsage(), t0 = performance.now();
  let keys = 0;
  const period = 1000 / rate;
  const timers = eds.map((e) => setTimeout(function tick() {
    e.type(); keys++;
    timers[eds.indexOf(e)] = setTimeout(tick, period * (0.5 + Math.random()));
  }, Math.random() * period));
  await sleep(args.duration * 1000);
  timers.forEach(clearTimeout);
  const typedFor = (performance.now() - t0) / 1000;
  // Converged: nothing unacknowledged, every editor at the same revision.
  const deadline = performance.now() + args.settle * 1000;
  const converged = () => eds.every((e) => e.synced()) && new Set(eds.map((e) => e.rev())).size === 1;
  while (!converged() && performance.now() < deadline) await sleep(10);
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuOf(server.pid) - cpu0, rss = rssOf(server.pid), self = process.cpuUsage(self0);
  const rev1 = Math.max(...eds.map((e) => e.rev()));
  const texts = new Set(eds.map((e) => e.text));
  const problems = [...stats.errors];
  if (!converged()) problems.push("did not converge in time");
  if (texts.size !== 1) problems.push(`${texts.size} different texts`);
  else if ([...texts][0].length !== keys) problems.push(`text of ${[...texts][0].length} characters for ${keys} keystrokes`);
  eds.forEach((e) => e.close());
  await sleep(200);
  const ops = rev1 - rev0;
  stats.lat.sort((a, b) => a - b);
  const pct = (p) => stats.lat.length ? stats.lat[Math.floor(p * (stats.lat.length - 1))] : NaN;
  return {
    kind, n, rate, keys, ops, typedFor, wall, cpu, rss, load0, load1: loadavg()[0],
    perOp: cpu / ops, perDelivery: cpu / (ops * (n - 1)),
    p50: pct(0.5), p99: pct(0.99), genCores: (self.user + self.system) / 1e6 / wall, problems,
  };
}

const us = (s) => `${(s * 1e6).toFixed(0)} µs`;
const ms = (v) => `${v.toFixed(1)} ms`;

function printRow(r) {
  console.log(`| ${r.n} × ${r.rate} | ${r.label} | ${r.load0.toFixed(2)} → ${r.load1.toFixed(2)} | ${r.ops} (${(r.ops / r.typedFor).toFixed(0)}/s) | ` +
    `${r.cpu.toFixed(2)} s (${(r.cpu / r.wall).toFixed(2)} cores) | **${us(r.perOp)}** | ${us(r.perDelivery)} | ` +
    `${ms(r.p50)} / ${ms(r.p99)} | ${r.rss.toFixed(0)} MB | ${r.genCores.toFixed(2)} | ${r.problems.length ? "**" + r.problems.join("; ") + "**" : "yes"} |`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.only && args.only !== "collabd" && args.only !== "sharedb") throw new Error(`-only ${args.only}: collabd or sharedb`);
  const bins = args.collabd.split(",");
  const kinds = [];
  if (args.only !== "sharedb") kinds.push(...bins.map((bin) => ({ kind: "collabd", bin, label: bins.length > 1 ? `collabd (${basename(bin)})` : "collabd" })));
  if (args.only !== "collabd") kinds.push({ kind: "sharedb", label: "ShareDB" });
  console.log(`bench-peers: ${args.duration} s of typing per run, ${args.rounds} round(s), ${new Date().toISOString()}, collabd ${args.collabd}`);
  console.log("| load | server | load avg | ops (revisions) | server CPU | CPU per op | per delivery | ack p50 / p99 | RSS | generator cores | converged |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  const results = [];
  let failed = false;
  for (const load of args.loads) {
    for (let round = 0; round < args.rounds; round++) {
      for (const { kind, bin, label } of round % 2 ? [...kinds].reverse() : kinds) {
        const server = kind === "collabd" ? await startCollabd(bin) : await startShareDB();
        try {
          const r = { ...(await runLoad(kind, server, load, args)), label };
          results.push(r);
          printRow(r);
          if (r.problems.length) failed = true;
          if (r.genCores > 0.9) console.log(`WARNING: the generator used ${r.genCores.toFixed(2)} cores: it is saturated, latencies include its own queueing`);
        } finally {
          await server.stop();
        }
      }
    }
  }
  const labels = kinds.map((k) => k.label);
  if (labels.includes("ShareDB") && labels.length > 1) {
    console.log("\nmedian server CPU per op, against ShareDB's:");
    const med = (xs) => { xs = [...xs].sort((a, b) => a - b); return xs[Math.floor((xs.length - 1) / 2)]; };
    for (const { editors, rate } of args.loads) {
      const of = (l) => med(results.filter((r) => r.label === l && r.n === editors && r.rate === rate).map((r) => r.perOp));
      const s = of("ShareDB");
      const parts = labels.filter((l) => l !== "ShareDB").map((l) => `${l} ${us(of(l))} (${(of(l) / s).toFixed(2)})`);
      console.log(`  ${editors} × ${rate}: ShareDB ${us(s)}; ${parts.join("; ")}`);
    }
  }
  if (failed) { console.log("FAILED: a run did not converge (above)"); process.exit(1); }
}

main().catch((e) => { console.error("bench-peers:", e); process.exit(1); });
