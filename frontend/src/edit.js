// edit.js: the editor page. CodeMirror holds the local text; every local
// transaction becomes a protocol op through Session, and remote ops come
// back as transactions marked remote and left out of the undo history (so
// undo reverts only this person's edits, mapped through everyone else's).
// The session's state is logged to IndexedDB as it changes (store.js).

import { EditorState, Compartment, StateField, StateEffect, Transaction, Annotation } from "@codemirror/state";
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection,
  highlightSpecialChars, Decoration, WidgetType,
} from "@codemirror/view";
import { history, historyKeymap, defaultKeymap, undo, redo } from "@codemirror/commands";
import { search, searchKeymap, openSearchPanel } from "@codemirror/search";
import { replay } from "./protocol.js";
import { AstralIndex, opFromChanges, changesFromOp } from "./positions.js";
import { Session } from "./session.js";
import { Store } from "./store.js";
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

// ---- peers' carets and selections ------------------------------------------

// Each color gets one class, its rule added to a constructed style sheet:
// the server's CSP allows no inline style attributes.
const { root: editorRoot, mount: editorMount } = shadowMount($("editor"));
const peerSheet = new CSSStyleSheet();
editorRoot.adoptedStyleSheets = [...editorRoot.adoptedStyleSheets, peerSheet];
const colorClasses = new Map();
function colorClass(color) {
  const hex = /^#[0-9a-f]{6}$/i.test(color) ? color.slice(1).toLowerCase() : "888888";
  if (!colorClasses.has(hex)) {
    peerSheet.insertRule(`.cm-ps-${hex} { background-color: #${hex}40; }`);
    colorClasses.set(hex, `cm-ps-${hex}`);
  }
  return colorClasses.get(hex);
}

class CaretWidget extends WidgetType {
  constructor(name, color, top) { super(); this.name = name; this.color = color; this.top = top; }
  eq(o) { return o.name === this.name && o.color === this.color && o.top === this.top; }
  toDOM() {
    const caret = el("span", { class: `cm-peer-caret${this.top ? " cm-peer-top" : ""}`, "data-name": this.name, "aria-hidden": "true" },
      el("span", { class: "cm-peer-label" }, this.name));
    caret.style.borderLeftColor = this.color;
    caret.firstChild.style.backgroundColor = this.color;
    return caret;
  }
  ignoreEvent() { return true; }
}

const setPeerDecos = StateEffect.define();
const peerDecos = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    for (const e of tr.effects) if (e.is(setPeerDecos)) return e.value;
    return tr.docChanged ? deco.map(tr.changes) : deco;
  },
  provide: (f) => EditorView.decorations.from(f),
});

// ---- the editor -------------------------------------------------------------

// Author colors (authors.js): the runs of GET /authors as marks, kept in
// step between fetches by marking what each change inserts with its
// author (ours for a local change, the op's for a remote one).
const styleAuthor = authorStyler(editorRoot);
const authorMark = authorMarker(styleAuthor);
const setAuthorDecos = StateEffect.define();
const remoteAuthor = Annotation.define();
let authorsOn = false;
const authorDecos = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    for (const e of tr.effects) if (e.is(setAuthorDecos)) return e.value;
    if (!tr.docChanged) return deco;
    if (!authorsOn) return deco.map(tr.changes);
    const who = authorsOn && (tr.annotation(remote) ? tr.annotation(remoteAuthor) : session && session.author);
    return markChanges(deco.map(tr.changes), tr.changes, who, authorMark);
  },
  provide: (f) => EditorView.decorations.from(f),
});

const remote = Annotation.define();
const editable = new Compartment();
let index = new AstralIndex("");
let session = null, store = null;

const theme = EditorView.theme({
  "&": { height: "100%", color: "var(--fg)", backgroundColor: "var(--bg)", fontSize: "var(--editor-size, 15px)" },
  "&.cm-focused": { outline: "none", boxShadow: "inset 0 0 0 2px var(--accent)" },
  ".cm-scroller": { lineHeight: "1.5", fontFamily: "var(--mono)" },
  ".cm-content": { caretColor: "var(--fg)", tabSize: "4" },
  // Other editors' carets: zero-width widgets with the name above.
  ".cm-peer-caret": { position: "relative", borderLeft: "2px solid", margin: "0 -1px" },
  ".cm-peer-label": { position: "absolute", left: "-2px", bottom: "100%", font: "600 11px/1.3 system-ui, sans-serif", color: "#fff",
    padding: "0 .35em", borderRadius: "3px 3px 3px 0", whiteSpace: "nowrap", pointerEvents: "none", zIndex: "5", opacity: ".92" },
  ".cm-peer-top .cm-peer-label": { bottom: "auto", top: "100%", borderRadius: "0 3px 3px 3px" },
  ".cm-cursor, .cm-dropCursor": { borderLeftColor: "var(--fg)" },
  "&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground, .cm-content ::selection": { backgroundColor: "var(--sel)" },
  ".cm-gutters": { backgroundColor: "var(--bg2)", color: "var(--muted)", borderRight: "1px solid var(--line)" },
  ".cm-activeLine": { backgroundColor: "var(--active)" },
  ".cm-activeLineGutter": { backgroundColor: "var(--active)" },
  ".cm-panels": { backgroundColor: "var(--bg2)", color: "var(--fg)" },
});

function onUpdate(u) {
  for (const tr of u.transactions) {
    if (!tr.docChanged) continue;
    const changes = [], inserted = [];
    tr.changes.iterChanges((fromA, toA, fromB, toB, ins) => { changes.push({ fromA, toA, fromB, toB }); inserted.push(ins); });
    const local = !tr.annotation(remote);
    // The op is built against the index of the document before the change.
    const op = local ? opFromChanges(index, changes, (k) => inserted[k].toString(), tr.startState.doc.length) : null;
    index.map(changes, (a, b) => tr.state.doc.sliceString(a, b), tr.state.doc.length);
    if (local && session) session.edit(op);
  }
  if (u.docChanged) { titleChanged(); schedulePreview(); if (comments) comments.changed(); }
  // Only our own moves are news: the server maps everyone's carets
  // through every op itself, so a remote change needs no cursor message
  // (with many editors those would multiply: each op, a message from each).
  if (u.transactions.some((tr) => !tr.annotation(remote) && (tr.docChanged || tr.selection))) scheduleCursor();
}

const view = new EditorView({
  parent: editorMount,
  state: EditorState.create({
    doc: "",
    extensions: [
      lineNumbers(), highlightActiveLineGutter(), highlightSpecialChars(), history(), drawSelection(),
      highlightActiveLine(), EditorView.lineWrapping, search({ top: true }),
      keymap.of([...defaultKeymap, ...searchKeymap, ...historyKeymap]),
      editable.of([EditorState.readOnly.of(true), EditorView.editable.of(false)]),
      peerDecos, authorDecos, theme, sizedMarkdown(), commentExtensions,
      EditorView.contentAttributes.of({ "aria-label": "Document text" }),
      EditorView.updateListener.of(onUpdate),
    ],
  }),
});

function setEditable(on) {
  view.dispatch({ effects: editable.reconfigure(on ? [] : [EditorState.readOnly.of(true), EditorView.editable.of(false)]) });
}

// replaceAll puts text into the editor as a remote change (not undoable).
function replaceAll(text) {
  view.dispatch({
    changes: { from: 0, to: view.state.doc.length, insert: text },
    annotations: [remote.of(true), Transaction.addToHistory.of(false), Transaction.remote.of(true)],
  });
}

function applyOp(op, author) {
  view.dispatch({
    changes: changesFromOp(index, op),
    annotations: [remote.of(true), remoteAuthor.of(author || ""), Transaction.addToHistory.of(false), Transaction.remote.of(true)],
  });
  if (authorsOn) scheduleAuthors();
}

function renderPeerDecos(peers) {
  const doc = view.state.doc, decos = [];
  for (const p of peers.values()) {
    for (const [a, h] of p.ranges) {
      const ua = Math.min(index.cpToUnit(a), doc.length), uh = Math.min(index.cpToUnit(h), doc.length);
      if (ua !== uh) decos.push(Decoration.mark({ class: `cm-peer-sel ${colorClass(p.color)}` }).range(Math.min(ua, uh), Math.max(ua, uh)));
      const top = doc.lineAt(uh).number === 1;
      decos.push(Decoration.widget({ widget: new CaretWidget(p.name || "Anonymous", p.color, top), side: -1 }).range(uh));
    }
  }
  view.dispatch({ effects: setPeerDecos.of(Decoration.set(decos, true)) });
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
  if (!peersTimer) peersTimer = setTimeout(() => { peersTimer = 0; if (session) drawPeers(session.peers); }, 80);
}

function drawPeers(peers) {
  renderPeerDecos(peers);
  const me = el("li", {}, el("span", { class: "swatch" }), el("span", {}, `${nameEl.value || "Anonymous"} (you)`));
  me.firstChild.style.backgroundColor = myColor || "#888";
  const items = [me];
  for (const p of peers.values()) {
    rememberAuthor(p.author, p.name);
    const line = p.ranges.length ? view.state.doc.lineAt(Math.min(index.cpToUnit(p.ranges[0][1]), view.state.doc.length)).number : null;
    const li = el("li", { "data-author": p.author }, el("span", { class: "swatch" }), el("span", {}, p.name || "Anonymous"),
      line ? el("span", { class: "muted" }, ` line ${line}`) : null);
    li.firstChild.style.backgroundColor = p.color;
    items.push(li);
  }
  peersEl.replaceChildren(...items);
  $("online-count").textContent = String(peers.size + 1);
}

let titleTimer = 0, lastTitle = "";
function titleChanged() {
  const doc = view.state.doc;
  const title = titleOf(doc.sliceString(0, Math.min(doc.length, 200)));
  if (title === lastTitle) return;
  lastTitle = title;
  titleEl.textContent = title;
  document.title = `${title} · collabd`;
  clearTimeout(titleTimer);
  titleTimer = setTimeout(() => rememberDoc({ id: docId, title, opened: Date.now() }), 1000);
}

let cursorTimer = 0;
function scheduleCursor() {
  if (cursorTimer || !session) return;
  cursorTimer = setTimeout(() => {
    cursorTimer = 0;
    const ranges = view.state.selection.ranges.map((r) => [index.unitToCp(r.anchor), index.unitToCp(r.head)]);
    session.cursor(ranges);
  }, 50);
}

// ---- persistence ----------------------------------------------------------------

let idleTimer = 0, logged = 0;
function persist(ev) {
  if (!store) return;
  if (ev.k === "snap") { snapshot(); return; }
  logged++;
  store.append(ev).catch(() => {});
  clearTimeout(idleTimer);
  // Rewrite the snapshot when idle, or every 1000 changes for someone who
  // never pauses, so that the log a reload replays stays short.
  if (logged >= 1000) snapshot();
  else idleTimer = setTimeout(() => { if (logged) snapshot(); }, 2000);
}

function snapshot() {
  if (!store || !session || !session.client) return;
  logged = 0;
  store.snapshot(docId, {
    text: view.state.doc.toString(), client: session.client.toJSON(), author: session.author,
    pending: session.client.pending(),
  }).catch(() => {});
}

// restore rebuilds the stored state: the snapshot's text and client, then
// every logged change replayed in order.
function restore(rec, events) {
  const { client, op } = replay(rec.snap.client, events);
  replaceAll(rec.snap.text);
  index = new AstralIndex(rec.snap.text);
  if (op) applyOp(op);
  return client;
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
    if (store) store.forget().catch(() => {});
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
      if (store) await store.forget().catch(() => {});
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
  store = await Store.open().catch(() => null);
  let clientId = sessionStorage.getItem(`collabd-client-${docId}`), client = null, author = null;
  if (store) {
    const got = await store.adopt(docId, clientId).catch(() => null);
    if (got) {
      clientId = got.clientId;
      if (got.record) {
        try { client = restore(got.record, got.events); author = got.record.snap.author; } catch (err) {
          console.error("collabd: dropping stored state", err);
          client = null;
          replaceAll("");
          index = new AstralIndex("");
        }
      }
    } else store = null;
  }
  if (!clientId) clientId = crypto.randomUUID();
  sessionStorage.setItem(`collabd-client-${docId}`, clientId);
  comments = new CommentPane({ view, index: () => index, session: () => session, docId, clientId, name: () => nameEl.value });
  if (client) { pending = client.pending(); setEditable(true); titleChanged(); }

  session = new Session({
    docId, clientId, name: nameEl.value, client, author,
    cb: {
      onReset(text) { replaceAll(text); },
      onRemote: applyOp,
      onPeers: renderPeers,
      onComments(threads) { comments.update(threads); },
      onStatus(s, delay, why) {
        state = s;
        if (s === "offline") { retryAt = Date.now() + (delay || 0); if (why) shutdown = true; }
        else shutdown = false;
        renderStatus();
      },
      onWelcome(w) {
        $("banner").dataset.kind === "conflict" || ($("banner").hidden = true);
        if (w.color) { myColor = w.color; localStorage.setItem("collabd-color", w.color); }
        fillShare(w.viewId);
        if (authorsOn) scheduleAuthors(0);
        revEl.textContent = `revision ${w.rev}`;
        rememberDoc({ id: docId, viewId: w.viewId, title: lastTitle || titleOf(""), opened: Date.now() });
        setEditable(true);
        titleChanged();
      },
      onEvent(ev) {
        persist(ev);
        if (ev.k === "ack" || ev.k === "remote") revEl.textContent = `revision ${ev.rev}`;
      },
      onPending(n) { pending = n; renderStatus(); },
      onConflict: showConflict,
      onFatal: showFatal,
    },
  });
  session.start();
}

// ---- controls -----------------------------------------------------------------

nameEl.addEventListener("change", () => {
  localStorage.setItem("collabd-name", nameEl.value);
  if (session) { session.name = nameEl.value; session.reconnect(true); renderPeers(); }
});
window.addEventListener("online", () => session && session.online());
window.addEventListener("offline", () => session && session.offline());
// Another document pasted into the address bar: start over for it.
window.addEventListener("hashchange", () => location.reload());
window.addEventListener("pagehide", () => { if (logged) snapshot(); });
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
  if (!session || !session.client) return;
  openHistory({
    // Protocol 1 servers named authors by client id.
    docId, head: () => session.client.rev, myAuthor: () => session.author || session.clientId,
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
      if (store) await store.forget().catch(() => {});
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
  if (session && a === session.author) return `${nameEl.value || "Anonymous"} (you)`;
  return authorNames.get(a) || "";
}

// showLegend lists the authors of runs (the editor's, or the history's
// at the revision it shows).
function showLegend(runs, names) {
  const mine = session && session.author ? { [session.author]: authorName(session.author) } : {};
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
    const doc = view.state.doc;
    const decos = runRanges(a.runs, index, doc.length).map(([f, t, au]) => authorMark(au).range(f, t));
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
window.collabdEditor = { view, get session() { return session; }, index: () => index, get comments() { return comments; },
  get markdown() { return mdMod; } };
start();
if (localStorage.getItem("collabd-author-colors")) setAuthorsOn(true);
if (localStorage.getItem("collabd-preview")) setPreviewOn(true);
