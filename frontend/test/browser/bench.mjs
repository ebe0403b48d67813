// bench.mjs BASE_URL: the frontend's benchmark, figures for
// docs/performance.md ("Frontend"). Run by `BROWSER_BENCH=1 go test -run
// TestBrowserBenchmark -v ./cmd/collabd`, which starts the server.
//
//  1. The page's own work per keystroke at 10K, 100K and 1M code points:
//     from the page's keydown listener to the end of the editor's update
//     (CodeMirror's DOM update, our op, the WebSocket send, the IndexedDB
//     append being queued) plus a forced style and layout of the change.
//  2. Keystroke-to-screen latency in another browser: from the keydown
//     in one page to the change being in the other page's DOM, with 2 and
//     with 20 browser editors typing into one document.
//  3. The bundle's size, raw and gzipped, per page.
import { gzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { launch, live, createDoc, sleep, until } from "./lib.mjs";

const rl = createInterface({ input: process.stdin });
const lines = rl[Symbol.asyncIterator]();
async function ask(cmd) {
  process.stdout.write(`${cmd}\n`);
  const { value } = await lines.next();
  if (value !== "ok") throw new Error(`${cmd}: ${value}`);
}

const base = process.argv[2];
const keys = Number(process.env.BENCH_KEYS || 200);
const parts = new Set((process.env.BENCH_PARTS || "keystroke latency bundle").split(/\s+/));
const browser = await launch();
const out = {};

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const fmt = (x) => Math.round(x * 100) / 100;

// BENCH_FEATURES="preview authors" turns the Markdown preview and the
// author colors on in the editors measured.
const features = new Set((process.env.BENCH_FEATURES || "").split(/\s+/).filter(Boolean));
const sizes = (process.env.BENCH_SIZES || "10000 100000 1000000").split(/\s+/).map(Number);

async function editor(id) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const p = await ctx.newPage();
  if (features.size) {
    await p.addInitScript((f) => {
      if (f.includes("preview")) localStorage.setItem("collabd-preview", "1");
      if (f.includes("authors")) localStorage.setItem("collabd-author-colors", "1");
    }, [...features]);
  }
  await p.goto(`${base}/edit.html#${id}`);
  await live(p);
  // Measured with the features in place: the preview rendered (at 1M
  // that takes seconds, and typing before it measures a page without
  // it) and the authors' colors loaded.
  if (features.has("preview")) await p.waitForFunction(() => document.getElementById("preview").childElementCount > 0, null, { timeout: 120000 });
  if (features.has("authors")) await p.waitForFunction(() => document.getElementById("authors-bar").dataset.rev, null, { timeout: 120000 });
  p.ctx = ctx;
  return p;
}

// A text of n code points in lines of 60, one emoji on every line so the
// UTF-16/code point index has work to do.
// BENCH_TEXT=notes makes it Markdown notes instead: a heading, then
// paragraphs of four lines with blank lines between.
function text(n) {
  if (process.env.BENCH_TEXT === "notes") {
    const para = `${"the quick brown fox jumps over the *lazy* dog 012345 ".slice(0, 58)}😀\n`.repeat(4) + "\n";
    const block = "## Section\n\n" + para.repeat(5);
    const k = Array.from(block).length;
    return block.repeat(Math.floor(n / k)) + "x".repeat(n % k);
  }
  const line = `${"the quick brown fox jumps over the lazy dog 0123456789 ".slice(0, 58)}😀\n`;
  const cpPerLine = Array.from(line).length;
  return line.repeat(Math.floor(n / cpPerLine)) + "x".repeat(n % cpPerLine);
}

// 1. Own work per keystroke.
for (const n of parts.has("keystroke") ? sizes : []) {
  const { id } = await createDoc(base, text(n));
  const p = await editor(id);
  await p.evaluate(() => {
    const v = window.collabdEditor.view;
    window.__samples = [];
    let t0 = 0;
    // From the page's first sight of the key (not e.timeStamp, which
    // includes the input's way through the browser process).
    window.addEventListener("keydown", () => { if (window.__measure) t0 = performance.now(); }, true);
    // The update is synchronous in the key's task; the microtask after it
    // forces the layout the change needs, then reads the clock.
    const root = document.getElementById("editor").shadowRoot;
    new MutationObserver(() => {
      if (!t0) return;
      void v.contentDOM.offsetHeight;
      window.__samples.push(performance.now() - t0);
      t0 = 0;
    }).observe(root, { subtree: true, childList: true, characterData: true });
    const mid = v.state.doc.line(Math.ceil(v.state.doc.lines / 2)).from;
    v.dispatch({ selection: { anchor: mid }, scrollIntoView: true });
    v.focus();
  });
  await sleep(300);
  // Warm up (JIT, caches) without measuring.
  for (let i = 0; i < 50; i++) await p.keyboard.press("KeyA");
  await sleep(300);
  await p.evaluate(() => { window.__measure = true; });
  for (let i = 0; i < keys; i++) {
    await p.keyboard.press(i % 20 === 19 ? "Enter" : "KeyA");
    if (i % 10 === 0) await sleep(20);
  }
  await sleep(500);
  const s = await p.evaluate(() => window.__samples);
  out[`keystroke_${n}`] = { samples: s.length, median_ms: fmt(pct(s, 0.5)), p99_ms: fmt(pct(s, 0.99)) };
  console.error(`own work per keystroke at ${n} code points: median ${fmt(pct(s, 0.5))} ms, p99 ${fmt(pct(s, 0.99))} ms (${s.length} keys)`);
  await p.ctx.close();
}

// 2. Keystroke to the other browser's screen.
// "20+" is two browsers and 18 editors over the Go client, which stand
// for people on other machines: 20 browsers on this machine's 2 cores
// measure mostly the 20 renderers' competition for them.
for (const spec of parts.has("latency") ? (process.env.BENCH_EDITORS || "2 20 2+18").split(" ") : []) {
  const [browsers, remote] = spec.split("+").map(Number);
  const editors = browsers + (remote || 0);
  const { id } = await createDoc(base, Array.from({ length: editors + 1 }, (_, i) => `line of editor ${i}: `).join("\n"));
  const pages = [];
  for (let i = 0; i < browsers; i++) pages.push(await editor(id));
  if (remote) await ask(`@typists ${id} ${remote}`);
  const [writer, watcher, ...others] = pages;
  // Everyone types on a line of their own; the writer on line 1.
  for (const [i, p] of pages.entries()) {
    await p.evaluate((line) => {
      const v = window.collabdEditor.view;
      v.dispatch({ selection: { anchor: v.state.doc.line(line).to } });
      v.focus();
    }, i + 1);
  }
  await watcher.evaluate(() => {
    const v = window.collabdEditor.view;
    window.__seen = [];
    let len = v.state.doc.line(1).length;
    const root = document.getElementById("editor").shadowRoot;
    new MutationObserver(() => {
      const l = v.state.doc.line(1).length;
      while (len < l) { len++; window.__seen.push(performance.timeOrigin + performance.now()); }
    }).observe(root, { subtree: true, childList: true, characterData: true });
  });
  await writer.evaluate(() => {
    window.__sent = [];
    window.addEventListener("keydown", (e) => window.__sent.push(performance.timeOrigin + e.timeStamp), true);
  });
  let stop = false;
  // The other editors type at about 3 keys a second each.
  const background = others.map(async (p, i) => {
    await sleep(i * 37);
    while (!stop) { await p.keyboard.press("KeyB"); await sleep(330); }
  });
  const n = Math.min(keys, 100);
  for (let i = 0; i < n; i++) { await writer.keyboard.press("KeyA"); await sleep(100); }
  await until("the watcher to see every key", async () => (await watcher.evaluate(() => window.__seen.length)) >= n, 30000);
  stop = true;
  await Promise.all(background);
  if (remote) await ask("@stop");
  const sent = await writer.evaluate(() => window.__sent), seen = await watcher.evaluate(() => window.__seen);
  const lat = sent.slice(0, n).map((t, i) => seen[i] - t);
  out[`latency_${spec}`] = { editors, browsers, samples: lat.length, p50_ms: fmt(pct(lat, 0.5)), p99_ms: fmt(pct(lat, 0.99)) };
  console.error(`keystroke to the other screen with ${editors} editors (${browsers} browsers): p50 ${fmt(pct(lat, 0.5))} ms, p99 ${fmt(pct(lat, 0.99))} ms`);
  for (const p of pages) await p.ctx.close();
}

// 3. Bundle sizes: what each page loads. The bundles' names carry a
// hash of their content (dist/entries.json maps the names pages ask for).
const dir = new URL("../../static/", import.meta.url);
const entries = JSON.parse(readFileSync(new URL("dist/entries.json", dir), "utf8"));
for (const [page, files] of Object.entries(parts.has("bundle") ? {
  editor: ["edit.html", "app.css", `dist/${entries["edit.js"]}`],
  viewer: ["view.html", "app.css", `dist/${entries["view.js"]}`],
  home: ["index.html", "app.css", `dist/${entries["home.js"]}`],
} : {})) {
  let raw = 0, gz = 0;
  for (const f of files) { const b = readFileSync(new URL(f, dir)); raw += b.length; gz += gzipSync(b, { level: 9 }).length; }
  out[`bundle_${page}`] = { raw_kb: fmt(raw / 1024), gzip_kb: fmt(gz / 1024) };
  console.error(`${page} page: ${fmt(raw / 1024)} KB, ${fmt(gz / 1024)} KB gzipped`);
}

await browser.close();
rl.close();
console.log(JSON.stringify(out));
