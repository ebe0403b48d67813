// monaco.mjs BASE (env DOC: a document's edit id): the SDK's Monaco
// binding in Chromium with the real monaco-editor (cmd/collabd's
// TestSDKMonacoBrowser). An embedder's page on an origin of its own loads
// Monaco (this package's devDependency, served from node_modules) and the
// SDK from collabd's /sdk/; Ada and Bob type into one document through two
// such editors at once, emoji and other astral characters included (Monaco
// counts UTF-16 units, the protocol code points), while Go clients of the
// test type into it too. Lines on stdout drive the Go side:
//   @typed         the browsers are done typing (the Go side stops)
//   < @head N      (stdin) the server's head revision once all is sent
//   @text [..]     each editor's text (JSON) once both are at revision N
//   ok monaco      every check passed
// Each editor must show the other's caret, at the other's own position.

import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { launch, watch, until, serverText } from "./lib.mjs";

const base = process.argv[2];
const id = process.env.DOC;
const here = path.dirname(fileURLToPath(import.meta.url));
const monacoDir = path.join(here, "node_modules", "monaco-editor", "min");
const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

const page = `<!doctype html><meta charset="utf-8"><title>Monaco SDK test</title>
<link rel="stylesheet" href="/monaco/vs/editor/editor.main.css">
<style>
  #ed { width: 900px; height: 400px; }
  .collab-selection { background: rgba(255, 160, 0, .3); }
  .collab-caret { border-left: 2px solid orange; margin-left: -1px; }
</style>
<div id="ed"></div>
<script src="/monaco/vs/loader.js"></script>
<script type="module">
  import { CollabDocument } from "${base}/sdk/collabd.mjs";
  import { bindMonaco } from "${base}/sdk/monaco.mjs";
  const p = new URLSearchParams(location.search);
  const monaco = await new Promise((resolve, reject) => {
    require.config({ paths: { vs: "/monaco/vs" } });
    require(["vs/editor/editor.main"], () => resolve(window.monaco), reject);
  });
  const doc = await CollabDocument.open({ server: "${base}", id: p.get("id"), name: p.get("name") });
  const editor = monaco.editor.create(document.getElementById("ed"), { value: doc.text, language: "plaintext", minimap: { enabled: false } });
  bindMonaco(doc, editor.getModel(), editor);
  Object.assign(window, { doc, editor });
</script>`;

const site = http.createServer((req, res) => {
  const u = new URL(req.url, "http://x");
  if (u.pathname === "/monaco.html") {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(page);
    return;
  }
  const f = path.join(monacoDir, path.normalize(decodeURIComponent(u.pathname.replace(/^\/monaco\//, "/"))));
  if (u.pathname.startsWith("/monaco/") && f.startsWith(monacoDir + path.sep) && fs.existsSync(f) && fs.statSync(f).isFile()) {
    const type = { ".js": "text/javascript", ".css": "text/css", ".ttf": "font/ttf" }[path.extname(f)] || "application/octet-stream";
    res.writeHead(200, { "Content-Type": `${type}; charset=utf-8` });
    fs.createReadStream(f).pipe(res);
    return;
  }
  res.writeHead(404);
  res.end();
});
await new Promise((r) => site.listen(0, "127.0.0.1", r));
const siteURL = `http://127.0.0.1:${site.address().port}`;

const browser = await launch();
const problems = [];
try {
  async function open(name) {
    const ctx = await browser.newContext({ viewport: { width: 1000, height: 600 } });
    const p = await ctx.newPage();
    await watch(p, problems, name);
    if (process.env.SDK_DEBUG) p.on("console", (m) => console.error(name, m.type(), m.text()));
    await p.goto(`${siteURL}/monaco.html?id=${id}&name=${encodeURIComponent(name)}`);
    await p.waitForFunction(() => window.doc && window.doc.status === "live" && window.editor, null, { timeout: 30000 });
    return p;
  }
  const ada = await open("Ada"), bob = await open("Bob");
  const value = (p) => p.evaluate(() => window.editor.getModel().getValue());

  // Both type at once, Ada at the start and Bob at the end, each with
  // astral characters, and each deletes one (a surrogate pair must go as
  // one code point, or the server would refuse the op or split it).
  async function type(p, where, parts) {
    await p.click(".monaco-editor .view-lines");
    await p.keyboard.press(where);
    for (const s of parts) {
      if (s === "\b") await p.keyboard.press("Backspace");
      else await p.keyboard.type(s, { delay: 15 });
    }
  }
  await Promise.all([
    type(ada, "Control+Home", ["Ada 😀 wrote 𝒳", "\b", "𝒴 here; ", "🎉🎉", "\b", " ok. "]),
    type(bob, "Control+End", [" Bob 🙂 typed ", "字 and 🐙", "\b", "🦀 too."]),
  ]);
  // Whatever the two editors typed, each sees the other's, between the
  // Go clients' characters (only "·", "ж" and "🌊", which they insert
  // anywhere).
  const words = (t) => t.replace(/[·ж🌊]/gu, "");
  await until("Ada's and Bob's words in both editors", async () => {
    const [a, b] = [await value(ada), await value(bob)];
    return a === b && words(a).includes("Ada 😀 wrote 𝒴 here; 🎉 ok. ") && words(a).includes(" Bob 🙂 typed 字 and 🦀 too.");
  }, 30000);
  process.stdout.write("@typed\n");

  const { value: line } = await stdin.next();
  const head = Number((line || "").replace(/^@head /, ""));
  if (!(head > 0)) throw new Error(`expected @head N, got ${JSON.stringify(line)}`);
  const want = await serverText(base, id);
  const texts = [];
  for (const [name, p] of [["Ada", ada], ["Bob", bob]]) {
    await until(`${name} at revision ${head}`, () => p.evaluate((h) => window.doc.rev >= h && window.doc.pending === 0, head), 30000);
    const [model, doc] = await p.evaluate(() => [window.editor.getModel().getValue(), window.doc.text]);
    if (model !== doc) throw new Error(`${name}'s Monaco model and document differ:\n${JSON.stringify(model)}\n${JSON.stringify(doc)}`);
    if (model !== want) throw new Error(`${name}'s text differs from the server's:\n got ${JSON.stringify(model)}\nwant ${JSON.stringify(want)}`);
    texts.push(model);
  }
  process.stdout.write(`@text ${JSON.stringify(texts)}\n`);

  // Each sees the other's caret where the other's cursor is: Bob's
  // decoration in Ada's editor starts at Bob's own cursor offset, in UTF-16
  // units of identical texts, with astral characters before it.
  const cursorOffset = (p) => p.evaluate(() => window.editor.getModel().getOffsetAt(window.editor.getPosition()));
  const caretOffsets = (p) => p.evaluate(() => {
    const m = window.editor.getModel();
    return m.getAllDecorations().filter((d) => d.options.afterContentClassName === "collab-caret").map((d) => m.getOffsetAt(d.range.getEndPosition()));
  });
  for (const [me, other, name] of [[ada, bob, "Bob"], [bob, ada, "Ada"]]) {
    // A move of one's own is sent as is (the server maps carets through
    // others' inserts with its own bias, Monaco with forceMoveMarkers).
    await other.keyboard.press("ArrowLeft");
    const at = await cursorOffset(other);
    await until(`${name}'s caret at UTF-16 offset ${at}`, async () => (await caretOffsets(me)).includes(at), 15000);
    await until(`${name}'s caret drawn`, () => me.evaluate(() => document.querySelectorAll(".collab-caret").length > 0));
  }
  if (problems.length) throw new Error(problems.join("\n"));
  process.stdout.write("ok monaco\n");
} finally {
  await browser.close();
  site.close();
}
// stdin's reader would keep Node running.
process.exit(0);
