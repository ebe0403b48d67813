// edit.js: the editor page, on the client SDK (sdk/collabd.js) and its
// CodeMirror binding (sdk/codemirror.js), the same modules embedding
// developers get: CodeMirror holds the local text; every local transaction
// becomes a protocol op, and remote ops come back as transactions marked
// remote and left out of the undo history (so undo reverts only this
// person's edits, mapped through everyone else's). The session's state is
// logged to IndexedDB as it changes (the SDK's indexedDBPersistence), so
// that a reload while offline loses nothing.

import { EditorState, Compartment, StateField, StateEffect, Transaction } from "@codemirror/state";
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection,
  highlightSpecialChars, Decoration,
} from "@codemirror/view";
import { history, historyKeymap, defaultKeymap, undo, redo } from "@codemirror/commands";
import { search, searchKeymap, openSearchPanel } from "@codemirror/search";
import { CollabDocument, indexedDBPersistence, AstralIndex } from "./sdk/collabd.js";
import { collab, collabIndex, fromCollab, collabAuthor } from "./sdk/codemirror.js";
import { $, el, uuidRe, titleOf, rememberDoc, listDocs, errorWords, download, copyButton, registerOffline, shadowMount } from "./common.js";
import { openHistory } from "./history.js";
import { me, accountBar, noAccess, shareDialog } from "./account.js";
import { CommentPane, commentExtensions } from "./comments.js";
import { authorStyler, authorMarker, markChanges, runRanges, legend, renderLegend } from "./authors.js";
import { sizedMarkdown } from "./mdlang.js";
import { wireExport } from "./export.js";

registerOffline();

const docId = location.hash.slice(1).toLowerCase();
// Who is signed in (account.js); asked at once, never waited for before
// editing starts.
const whoAmI = me().then((who) => { accountBar(who); return who; });
let rotating = false; // this page asked for new links: its session's end is expected
const statusEl = $("status"), statusLive = $("status-live"), titleEl = $("title"), peersEl = $("peers"), nameEl = $("name"), revEl = $("rev");

const { root: editorRoot, mount: editorMount } = shadowMount($("editor"));

// ---- the editor -------------------------------------------------------------

// Author colors (authors.js): the runs of GET /authors as marks, kept in
// step between fetches by marking what each change inserts with its
// author (ours for a local change, the op's for a remote one).
const styleAuthor = authorStyler(editorRoot);
const authorMark = authorMarker(styleAuthor);
const setAuthorDecos = StateEffect.define();
let authorsOn = false;
const authorDecos = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    for (const e of tr.effects) if (e.is(setAuthorDecos)) return e.value;
    if (!tr.docChanged) return deco;
    if (!authorsOn) return deco.map(tr.changes);
    const who = tr.annotation(fromCollab) ? tr.annotation(collabAuthor) : doc && doc.author;
    return markChanges(deco.map(tr.changes), tr.changes, who, authorMark);
  },
  provide: (f) => EditorView.decorations.from(f),
});

const editable = new Compartment();
// The binding (sdk/codemirror.js) goes in once the document is loaded.
const binding = new Compartment();
let doc = null, persistence = null;
// index converts between the editor's UTF-16 offsets and the protocol's
// code points: the binding's, kept in step with every change.
const index = () => collabIndex(view) || new AstralIndex(view.state.doc.toString());

const theme = EditorView.theme({
  "&": { height: "100%", color: "var(--fg)", backgroundColor: "var(--bg)", fontSize: "var(--editor-size, 15px)" },
  "&.cm-focused": { outline: "none", boxShadow: "inset 0 0 0 2px var(--accent)" },
  ".cm-scroller": { lineHeight: "1.5", fontFamily: "var(--mono)" },
  ".cm-content": { caretColor: "var(--fg)", tabSize: "4" },
  ".cm-cursor, .cm-dropCursor": { borderLeftColor: "var(--fg)" },
  "&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground, .cm-content ::selection": { backgroundColor: "var(--sel)" },
  ".cm-gutters": { backgroundColor: "var(--bg2)", color: "var(--muted)", borderRight: "1px solid var(--line)" },
  ".cm-activeLine": { backgroundColor: "var(--active)" },
  ".cm-activeLineGutter": { backgroundColor: "var(--active)" },
  ".cm-panels": { backgroundColor: "var(--bg2)", color: "var(--fg)" },
});

function onUpdate(u) {
  if (u.docChanged) { titleChanged(); schedulePreview(); if (comments) comments.changed(); }
}

const view = new EditorView({
  parent: editorMount,
  state: EditorState.create({
    doc: "",
    extensions: [
      lineNumbers(), highlightActiveLineGutter(), highlightSpecialChars(), history(), drawSelection(),
      highlightActiveLine(), EditorView.lineWrapping, search({ top: true }),
      keymap.of([...defaultKeymap, ...searchKeymap, ...historyKeymap]),
      editable.of([EditorState.readOnly.of(true), EditorView.editable.of(false)]), binding.of([]),
      authorDecos, theme, sizedMarkdown(), commentExtensions,
      EditorView.contentAttributes.of({ "aria-label": "Document text" }),
      EditorView.updateListener.of(onUpdate),
    ],
  }),
});

function setEditable(on) {
  view.dispatch({ effects: editable.reconfigure(on ? [] : [EditorState.readOnly.of(true), EditorView.editable.of(false)]) });
}

// ---- comments (comments.js) ---------------------------------------------------

let comments = null;

// ---- page state ---------------------------------------------------------------

let state = "connecting", pending = 0, retryAt = 0, shutdown = false, myColor = localStorage.getItem("collabd-color") || "";
// Names of the authors this browser has seen, so that the history can say
// who wrote a revision after they have left.
const authorNames = new Map((() => { try { return JSON.parse(localStorage.getItem("collabd-authors") || "[]"); } catch { return []; } })());
function rememberAuthor(author, name) {
  if (!author || !name || authorNames.get(author) === name) return;
  authorNames.set(author, name);
  try { localStorage.setItem("collabd-authors", JSON.stringify([...authorNames].slice(-500))); } catch { /* a convenience */ }
}

let wasLive = false;
function renderStatus() {
  let text;
  const wait = pending === 1 ? "1 edit waits" : `${pending} edits wait`;
  if (state === "live") text = pending ? `Live · saving ${pending === 1 ? "1 edit" : `${pending} edits`}` : "Live · saved";
  else if (state === "offline") {
    const secs = Math.max(0, Math.round((retryAt - Date.now()) / 1000));
    text = `${shutdown ? "Server restarting" : "Offline"}${pending ? ` · ${wait} to be sent` : ""} · reconnecting${secs ? ` in ${secs} s` : "…"}`;
  } else if (state === "connecting") text = pending ? `Connecting · ${wait}` : "Connecting…";
  else text = "Not connected";
  statusEl.textContent = text;
  statusEl.dataset.state = state;
  statusEl.dataset.pending = String(pending);
  // Screen readers hear the connection's state alone, and only when it
  // changes: not a countdown every second, nor each retry's "Connecting",
  // nor "saving" and "saved" at every keystroke.
  if (state === "live") wasLive = true;
  let spoken = text;
  if (state === "live") spoken = "Connected";
  else if (state === "offline" || (state === "connecting" && wasLive)) spoken = `${shutdown ? "Server restarting" : "Offline"}: your edits are kept and sent when the connection is back`;
  if (statusLive.textContent !== spoken) statusLive.textContent = spoken;
}
setInterval(() => { if (state === "offline") renderStatus(); }, 1000);

// renderPeers redraws the peers at most every 80 ms: with many editors,
// presence messages arrive far faster than anyone can read them, and
// between redraws CodeMirror maps the drawn carets through every change.
let peersTimer = 0;
function renderPeers() {
  if (!peersTimer) peersTimer = setTimeout(() => { peersTimer = 0; if (doc) drawPeers(doc.peers); }, 80);
}

// drawPeers lists who is here (the binding draws their carets).
function drawPeers(peers) {
  const me = el("li", {}, el("span", { class: "swatch" }), el("span", {}, `${nameEl.value || "Anonymous"} (you)`));
  me.firstChild.style.backgroundColor = myColor || "#888";
  const items = [me], text = view.state.doc, idx = index();
  for (const p of peers) {
    rememberAuthor(p.author, p.name);
    const line = p.ranges.length ? text.lineAt(Math.min(idx.cpToUnit(p.ranges[0][1]), text.length)).number : null;
    const li = el("li", { "data-author": p.author }, el("span", { class: "swatch" }), el("span", {}, p.name || "Anonymous"),
      line ? el("span", { class: "muted" }, ` line ${line}`) : null);
    li.firstChild.style.backgroundColor = p.color;
    items.push(li);
  }
  peersEl.replaceChildren(...items);
  $("online-count").textContent = String(peers.length + 1);
}

let titleTimer = 0, lastTitle = "";
function titleChanged() {
  const text = view.state.doc;
  const title = titleOf(text.sliceString(0, Math.min(text.length, 200)));
  if (title === lastTitle) return;
  lastTitle = title;
  titleEl.textContent = title;
  document.title = `${title} · collabd`;
  clearTimeout(titleTimer);
  titleTimer = setTimeout(() => rememberDoc({ id: docId, title, opened: Date.now() }), 1000);
}

// ---- errors a person can act on -----------------------------------------------------

async function showFatal(code) {
  if (rotating) return;
  setEditable(false);
  state = "failed";
  renderStatus();
  const banner = $("banner");
  const who = await whoAmI;
  const create = el("button", { type: "button", onclick: createAndGo }, "Create a new document");
  const home = el("a", { href: "/", class: "button" }, "Your documents");
  if (code === "not_found") {
    // A view id pasted into an edit link is the likeliest mistake.
    let isView = false;
    try { isView = uuidRe.test(docId) && (await fetch(`/api/view/${docId}`, { method: "HEAD" })).ok; } catch { /* offline */ }
    if (!isView && !who.off) {
      // With sign-in on, 404 is also what a private document answers.
      noAccess(banner, who, false);
    } else if (isView) {
      banner.replaceChildren(el("p", {}, el("strong", {}, "This is a view link. "), "It lets you watch this document, not edit it: ask for the edit link to write."),
        el("p", { class: "actions" }, el("a", { href: `/view.html#${docId}`, class: "button primary" }, "Open it read-only"), create, home));
      banner.dataset.kind = "view-link";
    } else {
      banner.replaceChildren(el("p", {}, el("strong", {}, "No document has this link. "), "It may have been deleted, or the link was cut short when it was copied."),
        el("p", { class: "actions" }, create, home));
      banner.dataset.kind = "not-found";
    }
    if (persistence) persistence.forget();
  } else if (code === "forbidden") {
    // Signed in, with too little access, or access withdrawn, or the
    // links rotated: what is typed here can no longer be saved.
    noAccess(banner, who, true);
    const text = view.state.doc.toString();
    const actions = banner.querySelector(".actions");
    actions.prepend(el("button", { type: "button", onclick: () => download(text, `${lastTitle} (your copy)`) }, "Download your copy"));
    // A viewer may still read it: offer the read-only page.
    try {
      const r = await fetch(`/api/docs/${docId}`, { cache: "no-store" });
      if (r.ok) {
        const d = await r.json();
        actions.prepend(el("a", { href: `/view.html#${d.viewId}`, class: "button primary", id: "open-read-only" }, "Open it read-only"));
      }
    } catch { /* offline */ }
  } else {
    // The server refused what this page holds (an edit it cannot apply):
    // resending it after a reload would fail again, so the reload starts
    // from the server's text, and the local copy can be saved first.
    const text = view.state.doc.toString();
    const reload = async () => {
      if (persistence) await persistence.forget();
      sessionStorage.removeItem(`collabd-client-${docId}`);
      location.reload();
    };
    banner.replaceChildren(el("p", {}, errorWords(code)),
      el("p", { class: "actions" }, el("button", { type: "button", class: "primary", onclick: reload }, "Reload from the server"),
        el("button", { type: "button", onclick: () => download(text, `${lastTitle} (your copy)`) }, "Download your copy"), home));
    banner.dataset.kind = "error";
  }
  banner.hidden = false;
  const title = { error: "Cannot edit", "no-access": "No access" }[banner.dataset.kind] || "Not found";
  titleEl.textContent = title;
  document.title = `${title} · collabd`;
  // Nothing here can be used without a document.
  document.body.classList.add("failed");
  statusEl.textContent = { not_found: "Not found", forbidden: "No access" }[code] || "Stopped";
}

async function createAndGo() {
  const r = await fetch("/api/docs", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
  if (r.ok) { const d = await r.json(); location.href = `/edit.html#${d.id}`; location.reload(); }
}

function showConflict() {
  // Unsent edits whose base the server no longer has: keep the text they
  // made, for the person to merge by hand.
  const text = view.state.doc.toString();
  const banner = $("banner");
  banner.replaceChildren(el("p", {}, "Some edits made offline could not be merged with the server's text, which replaced them. Your copy is kept here."),
    el("p", { class: "actions" }, el("button", { type: "button", class: "primary", onclick: () => download(text, `${lastTitle} (your copy)`) }, "Download your copy"),
      el("button", { type: "button", onclick: () => { banner.hidden = true; } }, "Dismiss")));
  banner.dataset.kind = "conflict";
  banner.hidden = false;
}

// defaultName gives a first-time visitor a name others can tell apart
// from "Anonymous", kept until they choose their own.
function defaultName() {
  const animals = ["Otter", "Heron", "Lynx", "Marten", "Ibis", "Puffin", "Gecko", "Okapi", "Tapir", "Wren", "Koala", "Bison"];
  const name = `${animals[Math.floor(Math.random() * animals.length)]} ${Math.floor(10 + Math.random() * 90)}`;
  localStorage.setItem("collabd-name", name);
  return name;
}

// ---- start --------------------------------------------------------------------

async function start() {
  nameEl.value = localStorage.getItem("collabd-name") || defaultName();
  if (!uuidRe.test(docId)) { showFatal("not_found"); return; }
  rememberDoc({ id: docId, opened: Date.now() });
  persistence = indexedDBPersistence();
  doc = new CollabDocument({ id: docId, name: nameEl.value, clientId: sessionStorage.getItem(`collabd-client-${docId}`), persistence });
  // What this tab held (its unsent edits too) is shown, and editable, at
  // once, before any connection.
  const restored = await doc.load();
  sessionStorage.setItem(`collabd-client-${docId}`, doc.clientId);
  comments = new CommentPane({ view, index, doc: () => doc, docId, clientId: doc.clientId, name: () => nameEl.value });
  view.dispatch({
    changes: { from: 0, to: view.state.doc.length, insert: doc.text },
    effects: binding.reconfigure(collab(doc)),
    annotations: [fromCollab.of(true), Transaction.addToHistory.of(false), Transaction.remote.of(true)],
  });
  if (restored) { pending = doc.pending; setEditable(true); titleChanged(); }

  doc.on("change", (ch) => {
    if (ch.local) return;
    revEl.textContent = `revision ${doc.rev}`;
    if (authorsOn) scheduleAuthors();
  });
  doc.on("presence", renderPeers);
  doc.on("comments", (threads) => comments.update(threads));
  doc.on("status", (s, why) => {
    state = s;
    if (s === "offline") { retryAt = doc.retryAt; if (why) shutdown = true; }
    else shutdown = false;
    renderStatus();
  });
  doc.on("welcome", (w) => {
    $("banner").dataset.kind === "conflict" || ($("banner").hidden = true);
    if (w.color) { myColor = w.color; localStorage.setItem("collabd-color", w.color); }
    fillShare(w.viewId);
    if (authorsOn) scheduleAuthors(0);
    revEl.textContent = `revision ${w.rev}`;
    rememberDoc({ id: docId, viewId: w.viewId, title: lastTitle || titleOf(""), opened: Date.now() });
    setEditable(true);
    titleChanged();
  });
  doc.on("pending", (n) => { pending = n; revEl.textContent = `revision ${doc.rev}`; renderStatus(); });
  doc.on("conflict", showConflict);
  doc.on("error", (err) => showFatal(err.code));
  // A refusal arrives as "error" too.
  doc.connect().catch(() => {});
}

// ---- controls -----------------------------------------------------------------

nameEl.addEventListener("change", () => {
  localStorage.setItem("collabd-name", nameEl.value);
  if (doc) { doc.setName(nameEl.value); renderPeers(); }
});
window.addEventListener("online", () => doc && doc.reconnect());
window.addEventListener("offline", () => doc && doc.offline());
// Another document pasted into the address bar: start over for it.
window.addEventListener("hashchange", () => location.reload());
window.addEventListener("pagehide", () => { if (persistence) persistence.flush(); });
copyButton($("copy-edit"), $("edit-link"));
copyButton($("copy-view"), $("view-link"));
// The share panel is filled before any welcome, so that a page reloaded
// offline offers the links too: the edit link is this page's, the view
// link the one this browser remembers from an earlier visit.
function fillShare(viewId) {
  $("edit-link").value = `${location.origin}/edit.html#${docId}`;
  const v = $("view-link"), copy = $("copy-view");
  v.value = viewId ? `${location.origin}/view.html#${viewId}` : "";
  v.placeholder = viewId ? "" : "known once connected";
  copy.disabled = !viewId;
}
fillShare((listDocs().find((d) => d.id === docId) || {}).viewId);
wireExport($("download"), $("export-menu"), () => view.state.doc.toString(), () => lastTitle, $("print"),
  () => (comments ? comments.markdown() : ""));
$("search-btn").addEventListener("click", () => { openSearchPanel(view); });
$("undo-btn").addEventListener("click", () => { undo(view); view.focus(); });
$("redo-btn").addEventListener("click", () => { redo(view); view.focus(); });
// Ctrl+Alt+M: comment on the selection.
window.addEventListener("keydown", (e) => {
  if (e.ctrlKey && e.altKey && (e.key === "m" || e.key === "M") && comments) {
    e.preventDefault();
    comments.toggle(true);
    $("comment-text").focus();
  }
});
$("panel-btn").addEventListener("click", () => {
  const side = $("side"), open = side.classList.toggle("open");
  $("panel-btn").setAttribute("aria-expanded", String(open));
});
$("history-btn").addEventListener("click", () => {
  if (!doc || !doc.editable) return;
  openHistory({
    // Protocol 1 servers named authors by client id.
    docId, head: () => doc.rev, myAuthor: () => doc.author || doc.clientId,
    names: authorNames, you: () => nameEl.value || "you", name: () => nameEl.value,
    authorColors: () => authorsOn, showLegend, closed: () => { if (authorsOn) loadAuthors(); },
  });
});

// The owner's share dialog (account.js), offered when the server says
// this person may manage the document's access.
whoAmI.then(async (who) => {
  if (!who.user || !uuidRe.test(docId)) return;
  const r = await fetch(`/api/docs/${docId}/access`, { cache: "no-store" }).catch(() => null);
  if (!r || !r.ok) return;
  const btn = $("share-btn");
  btn.hidden = false;
  btn.addEventListener("click", () => shareDialog(docId, {
    beforeRotate() { rotating = true; },
    async rotated(ids) {
      if (persistence) await persistence.forget();
      sessionStorage.removeItem(`collabd-client-${docId}`);
      location.replace(`/edit.html#${ids.id}`);
      location.reload();
    },
    failed() { rotating = false; },
  }));
});

// ---- Markdown preview -------------------------------------------------------------

// The preview is rendered after a pause in typing, never per keystroke:
// the wait grows with what the last rendering cost, so that a long
// document does not slow typing. A rendering redoes only the chunks of
// the text that changed (markdown.js, Preview), and chunks out of sight
// cost no layout (app.css).
// The renderer (markdown.js: markdown-it, DOMPurify) is a chunk of its
// own, loaded when the preview is first shown.
const previewEl = $("preview");
let previewOn = false, previewTimer = 0, previewCost = 0, mdMod = null, md = null, preview = null;
function schedulePreview() {
  if (!previewOn) return;
  clearTimeout(previewTimer);
  previewTimer = setTimeout(renderPreview, Math.max(150, 3 * previewCost));
}

function renderPreview() {
  if (!previewOn) return;
  if (!mdMod) {
    import("./markdown.js").then((m) => {
      mdMod = m;
      // A code language that has loaded highlights chunks rendered before.
      md = m.renderer(() => { if (preview) preview.clear(); schedulePreview(); });
      preview = new m.Preview(previewEl, md, m.DOMPurify);
      renderPreview();
    },
      (err) => { previewEl.textContent = `The preview could not be loaded: ${err.message}`; });
    return;
  }
  const t0 = performance.now();
  preview.update(view.state.doc.toString());
  previewCost = performance.now() - t0;
  syncPreview();
}

// syncPreview scrolls the preview to the block at the top of the editor.
function syncPreview() {
  if (!previewOn) return;
  const top = view.lineBlockAtHeight(view.scrollDOM.scrollTop - view.documentTop + view.scrollDOM.getBoundingClientRect().top);
  const line = view.state.doc.lineAt(top.from).number - 1;
  let best = null;
  const chunk = preview && preview.chunkAt(line);
  for (const e of chunk ? chunk.querySelectorAll("[data-line]") : []) {
    if (Number(e.dataset.line) > line) break;
    best = e;
  }
  previewEl.scrollTop = best ? best.getBoundingClientRect().top - previewEl.getBoundingClientRect().top + previewEl.scrollTop - 8 : 0;
}
view.scrollDOM.addEventListener("scroll", () => requestAnimationFrame(syncPreview), { passive: true });

// A box ticked in the preview is an edit of its line.
previewEl.addEventListener("change", (e) => {
  const box = e.target;
  if (!box.matches("input.task")) return;
  const n = Number(box.dataset.line);
  if (view.state.readOnly || !(n >= 0 && n < view.state.doc.lines)) { box.checked = !box.checked; return; }
  const line = view.state.doc.line(n + 1);
  const c = mdMod && mdMod.toggleTask(line.text, 0);
  if (!c) return;
  view.dispatch({ changes: { from: line.from + c.from, to: line.from + c.to, insert: c.insert }, userEvent: "input" });
});

function setPane(pane) {
  document.body.dataset.pane = pane;
  $("tab-text").setAttribute("aria-selected", String(pane === "text"));
  $("tab-preview").setAttribute("aria-selected", String(pane === "preview"));
}
$("tab-text").addEventListener("click", () => setPane("text"));
$("tab-preview").addEventListener("click", () => setPane("preview"));

function setPreviewOn(on) {
  previewOn = on;
  document.body.classList.toggle("previewing", on);
  $("preview-btn").setAttribute("aria-pressed", String(on));
  try { localStorage.setItem("collabd-preview", on ? "1" : ""); } catch { /* a convenience */ }
  if (on) { setPane("preview"); renderPreview(); } else { if (preview) preview.clear(); setPane("text"); }
}
$("preview-btn").addEventListener("click", () => setPreviewOn(!previewOn));

// ---- author colors --------------------------------------------------------------

let authorsTimer = 0;
function scheduleAuthors(ms = 2000) {
  clearTimeout(authorsTimer);
  authorsTimer = setTimeout(loadAuthors, ms);
}

function authorName(a) {
  if (doc && a === doc.author) return `${nameEl.value || "Anonymous"} (you)`;
  return authorNames.get(a) || "";
}

// showLegend lists the authors of runs (the editor's, or the history's
// at the revision it shows).
function showLegend(runs, names) {
  const mine = doc && doc.author ? { [doc.author]: authorName(doc.author) } : {};
  renderLegend($("authors-legend"), legend(runs, { ...names, ...mine }, authorName));
}

async function loadAuthors() {
  if (!authorsOn) return;
  try {
    const r = await fetch(`/api/docs/${docId}/authors`, { cache: "no-store" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const a = await r.json();
    if (!authorsOn) return;
    for (const [k, v] of Object.entries(a.names || {})) rememberAuthor(k, v);
    const decos = runRanges(a.runs, index(), view.state.doc.length).map(([f, t, au]) => authorMark(au).range(f, t));
    view.dispatch({ effects: setAuthorDecos.of(Decoration.set(decos, true)) });
    showLegend(a.runs, a.names);
    $("authors-bar").dataset.rev = String(a.rev);
  } catch (err) {
    $("authors-legend").replaceChildren(el("li", {}, `Could not load who wrote what: ${err.message}`));
  }
}

function setAuthorsOn(on) {
  authorsOn = on;
  $("authors-btn").setAttribute("aria-pressed", String(on));
  $("authors-bar").hidden = !on;
  try { localStorage.setItem("collabd-author-colors", on ? "1" : ""); } catch { /* a convenience */ }
  if (on) loadAuthors();
  else view.dispatch({ effects: setAuthorDecos.of(Decoration.none) });
}
$("authors-btn").addEventListener("click", () => setAuthorsOn(!authorsOn));

// For the browser tests and the benchmark.
window.collabdEditor = { view, get doc() { return doc; }, index, get comments() { return comments; },
  get markdown() { return mdMod; } };
start();
if (localStorage.getItem("collabd-author-colors")) setAuthorsOn(true);
if (localStorage.getItem("collabd-preview")) setPreviewOn(true);
