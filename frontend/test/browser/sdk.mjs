// sdk.mjs BASE: the SDK's editor bindings in Chromium (cmd/collabd's
// TestSDKBrowser). Each page is an embedder's page on an origin of its
// own (a server this script runs), which imports the SDK cross-origin
// from collabd's /sdk/ URLs and edits over a WebSocket that collabd
// allows from that origin (-allowed-origins); CodeMirror comes through an
// import map from bundles esbuild makes here of frontend/src's pinned
// packages (the application's own copies). Two
// people edit one document through each binding, and the test looks at
// what each would see: the text, the caret staying put, the other's
// caret with their name, and undo taking back only one's own edits.
// Prints "ok NAME" per scenario; exits non-zero on the first failure.

import * as esbuild from "../../src/node_modules/esbuild/lib/main.js";
import path from "node:path";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { launch, watch, until, serverText, sleep } from "./lib.mjs";

const base = process.argv[2];
const only = process.argv.slice(3);
const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, "..", "..", "src");

// One ES module per CodeMirror package, each importing the others by
// their bare names (resolved by the page's import map), as a CDN serves
// them: the binding and the page must share one @codemirror/state.
const cmPackages = ["@codemirror/state", "@codemirror/view", "@codemirror/commands"];
const cmModules = {};
for (const pkg of cmPackages) {
  const out = await esbuild.build({
    absWorkingDir: src, stdin: { contents: `export * from "${pkg}";`, resolveDir: src, loader: "js" },
    bundle: true, format: "esm", write: false, logLevel: "warning",
    external: cmPackages.filter((p) => p !== pkg),
  });
  cmModules[pkg] = out.outputFiles[0].text;
}
const cmURL = (pkg) => `/cm/${pkg.replace("@codemirror/", "")}.mjs`;
const importMap = JSON.stringify({ imports: Object.fromEntries(cmPackages.map((p) => [p, cmURL(p)])) });

const page = (body) => `<!doctype html><meta charset="utf-8"><title>SDK test</title>
<script type="importmap">${importMap}</script>
<body>${body}</body>`;

const textareaPage = page(`<textarea id="ta" rows="8" cols="60"></textarea>
<script type="module">
  import { CollabDocument } from "${base}/sdk/collabd.mjs";
  import { bindTextarea } from "${base}/sdk/textarea.mjs";
  const p = new URLSearchParams(location.search);
  const doc = await CollabDocument.open({ server: "${base}", id: p.get("id"), name: p.get("name") });
  bindTextarea(doc, document.getElementById("ta"));
  window.doc = doc;
</script>`);

const codemirrorPage = page(`<div id="ed"></div>
<script type="module">
  import { EditorState } from "@codemirror/state";
  import { EditorView, keymap } from "@codemirror/view";
  import { history, historyKeymap, defaultKeymap } from "@codemirror/commands";
  import { CollabDocument } from "${base}/sdk/collabd.mjs";
  import { collab } from "${base}/sdk/codemirror.mjs";
  const p = new URLSearchParams(location.search);
  const doc = await CollabDocument.open({ server: "${base}", id: p.get("id"), name: p.get("name") });
  window.view = new EditorView({
    parent: document.getElementById("ed"),
    state: EditorState.create({ doc: doc.text, extensions: [history(), keymap.of([...historyKeymap, ...defaultKeymap]), collab(doc)] }),
  });
  window.doc = doc;
</script>`);

async function createDoc(text) {
  const r = await fetch(`${base}/api/docs`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text }) });
  return (await r.json()).id;
}

// The embedder's site: the test pages and CodeMirror's modules.
const pages = { "/textarea.html": textareaPage, "/codemirror.html": codemirrorPage };
const site = http.createServer((req, res) => {
  const u = new URL(req.url, "http://x");
  if (pages[u.pathname]) {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(pages[u.pathname]);
  } else if (u.pathname.startsWith("/cm/")) {
    res.writeHead(200, { "Content-Type": "text/javascript; charset=utf-8" });
    res.end(cmModules["@codemirror/" + path.basename(u.pathname, ".mjs")]);
  } else { res.writeHead(404); res.end(); }
});
await new Promise((r) => site.listen(0, "127.0.0.1", r));
const siteURL = `http://127.0.0.1:${site.address().port}`;

const browser = await launch();
const problems = [];

async function open(pagePath, id, name) {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  await watch(p, problems, name);
  if (process.env.SDK_DEBUG) { p.on("console", (m) => console.error(name, m.type(), m.text())); p.on("pageerror", (e) => console.error(name, e)); }
  await p.goto(`${siteURL}${pagePath}?id=${id}&name=${encodeURIComponent(name)}`);
  await p.waitForFunction(() => window.doc && window.doc.status === "live", null, { timeout: 15000 });
  return p;
}

const scenarios = {
  async textarea() {
    const id = await createDoc("Hello");
    const ada = await open("/textarea.html", id, "Ada"), bob = await open("/textarea.html", id, "Bob");
    const value = (p) => p.$eval("#ta", (e) => e.value);
    // Ada types at the end, emoji included.
    await ada.click("#ta");
    await ada.keyboard.press("End");
    await ada.keyboard.type(" wörld 😀");
    await until("Bob to see Ada's typing", async () => (await value(bob)) === "Hello wörld 😀");
    // Bob types at the start while Ada's caret sits at the end: her caret
    // stays after her text, and what she types next lands there.
    await bob.click("#ta");
    await bob.keyboard.press("Control+Home");
    await bob.keyboard.type("字> ");
    await until("Ada to see Bob's typing", async () => (await value(ada)) === "字> Hello wörld 😀");
    await ada.keyboard.type("!");
    await until("both texts", async () => (await value(ada)) === "字> Hello wörld 😀!" && (await value(bob)) === "字> Hello wörld 😀!");
    await ada.evaluate(() => window.doc.synced());
    await bob.evaluate(() => window.doc.synced());
    const st = await serverText(base, id);
    if (st !== "字> Hello wörld 😀!") throw new Error(`server has ${JSON.stringify(st)}`);
    // Bob's selection reaches Ada in code points.
    await bob.$eval("#ta", (e) => { e.focus(); e.setSelectionRange(0, 3); document.dispatchEvent(new Event("selectionchange")); });
    await until("Ada to see Bob's selection", () => ada.evaluate(() => window.doc.peers.some((p) => p.name === "Bob" && p.ranges[0][0] === 0 && p.ranges[0][1] === 3)));
  },

  async codemirror() {
    const id = await createDoc("line one\nline two");
    const ada = await open("/codemirror.html", id, "Ada"), bob = await open("/codemirror.html", id, "Bob");
    const text = (p) => p.evaluate(() => window.view.state.doc.toString());
    await ada.click(".cm-content");
    await ada.keyboard.press("Control+End");
    await ada.keyboard.type(" 😀 by Ada");
    await until("Bob to see Ada's typing", async () => (await text(bob)) === "line one\nline two 😀 by Ada");
    // Bob sees Ada's caret with her name at the end of her text.
    await until("Ada's caret in Bob's editor", () => bob.evaluate(() => {
      const c = document.querySelector(".cm-collab-caret[data-name='Ada']");
      return c && c.textContent === "Ada";
    }));
    await bob.click(".cm-content");
    await bob.keyboard.press("Control+Home");
    await bob.keyboard.type("Bob: ");
    await until("Ada to see Bob's typing", async () => (await text(ada)) === "Bob: line one\nline two 😀 by Ada");
    // Ada's undo takes back her own typing only; Bob's stays.
    await ada.click(".cm-content");
    await ada.keyboard.press("Control+End");
    await sleep(600); // a new undo group
    for (let i = 0; i < 3; i++) await ada.keyboard.press("Control+z");
    await until("Ada's undo to reach Bob", async () => (await text(bob)) === "Bob: line one\nline two");
    if ((await text(ada)) !== "Bob: line one\nline two") throw new Error(`Ada's editor after undo: ${JSON.stringify(await text(ada))}`);
    await ada.evaluate(() => window.doc.synced());
    const st = await serverText(base, id);
    if (st !== "Bob: line one\nline two") throw new Error(`server has ${JSON.stringify(st)}`);
  },
};

let failed = false;
for (const [name, run] of Object.entries(scenarios)) {
  if (only.length && !only.includes(name)) continue;
  try {
    await run();
    if (problems.length) throw new Error(problems.join("; "));
    console.log(`ok ${name}`);
  } catch (err) {
    console.log(`FAIL ${name}: ${err.stack || err}`);
    failed = true;
    break;
  }
}
await browser.close();
site.close();
process.exit(failed ? 1 : 0);
