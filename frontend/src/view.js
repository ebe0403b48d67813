// view.js: the read-only page. It follows the document over Server-Sent
// Events with the SDK's CollabViewer (which reconnects by itself and
// resumes with Last-Event-ID) into a read-only CodeMirror, and scrolls to
// each change while "Follow" is on. It knows only the view id: nothing it fetches or
// shows can contain the edit id. When the owner shares the comment threads
// with viewers, they are shown read-only (viewcomments.js, comments.js).

import { EditorState } from "@codemirror/state";
import { EditorView, lineNumbers, highlightSpecialChars } from "@codemirror/view";
import { search, searchKeymap } from "@codemirror/search";
import { keymap } from "@codemirror/view";
import { CollabViewer, AstralIndex, changesFromOp } from "./sdk/collabd.js";
import { $, uuidRe, titleOf, registerOffline, shadowMount } from "./common.js";
import { sizedMarkdown } from "./mdlang.js";
import { wireExport } from "./export.js";
import { me, accountBar, noAccess } from "./account.js";
import { CommentPane, commentExtensions } from "./comments.js";
import { ViewerComments } from "./viewcomments.js";

registerOffline();
const whoAmI = me().then((who) => { accountBar(who); return who; });

const viewId = location.hash.slice(1).toLowerCase();
// A change of the link's # part names another document: load it, as the
// editor does (the stream and text in memory are the old one's).
window.addEventListener("hashchange", () => location.reload());
const statusEl = $("status"), statusLive = $("status-live"), revEl = $("rev"), followEl = $("follow");
let index = new AstralIndex("");

const view = new EditorView({
  parent: shadowMount($("doc")).mount,
  state: EditorState.create({
    extensions: [
      lineNumbers(), highlightSpecialChars(), EditorView.lineWrapping, EditorState.readOnly.of(true),
      EditorView.editable.of(false), search({ top: true }), keymap.of(searchKeymap), sizedMarkdown(),
      EditorView.contentAttributes.of({ "aria-label": "Document text (read-only)", tabindex: "0" }),
      commentExtensions,
      EditorView.theme({
        "&": { height: "100%", color: "var(--fg)", backgroundColor: "var(--bg)", fontSize: "var(--editor-size, 15px)" },
        "&.cm-focused": { outline: "none", boxShadow: "inset 0 0 0 2px var(--accent)" },
        ".cm-scroller": { lineHeight: "1.5", fontFamily: "var(--mono)" },
        ".cm-gutters": { backgroundColor: "var(--bg2)", color: "var(--muted)", borderRight: "1px solid var(--line)" },
        ".cm-panels": { backgroundColor: "var(--bg2)", color: "var(--fg)" },
      }),
    ],
  }),
});

function setStatus(state, text) {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
  if (statusLive.textContent !== text) statusLive.textContent = text;
}

let lastTitle = "";
function retitle() {
  const d = view.state.doc;
  const t = titleOf(d.sliceString(0, Math.min(200, d.length)));
  if (t !== lastTitle) { lastTitle = t; $("title").textContent = t; document.title = `${t} (read-only) · collabd`; }
}

function replace(text) {
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
  index = new AstralIndex(text);
  scheduleRender();
}

// ---- the rendered view -------------------------------------------------------------

// Spectators see the text rendered as Markdown (the default) or plain, as
// they choose; the renderer (markdown.js) is a chunk loaded when first
// needed, and renders after a pause that grows with what it costs.
const renderedEl = $("rendered");
let renderedOn = false, mdMod = null, md = null, renderTimer = 0, renderCost = 0, changedLine = -1;
function scheduleRender() {
  if (!renderedOn) return;
  clearTimeout(renderTimer);
  renderTimer = setTimeout(renderNow, Math.max(100, 3 * renderCost));
}

function renderNow() {
  if (!renderedOn) return;
  if (!mdMod) {
    import("./markdown.js").then((m) => { mdMod = m; md = m.renderer(scheduleRender); renderNow(); },
      (err) => { renderedEl.textContent = `The rendered view could not be loaded: ${err.message}`; });
    return;
  }
  const t0 = performance.now();
  const frag = mdMod.sanitize(mdMod.DOMPurify, mdMod.render(md, view.state.doc.toString()));
  for (const box of frag.querySelectorAll("input.task")) box.disabled = true; // read-only
  renderedEl.replaceChildren(frag);
  renderCost = performance.now() - t0;
  if (followEl.checked && changedLine >= 0) {
    let best = null;
    for (const e of renderedEl.querySelectorAll("[data-line]")) { if (Number(e.dataset.line) > changedLine) break; best = e; }
    if (best) best.scrollIntoView({ block: "nearest" });
  }
}

function setRendered(on) {
  renderedOn = on;
  document.body.classList.toggle("rendered", on);
  $("render-btn").setAttribute("aria-pressed", String(on));
  try { localStorage.setItem("collabd-view-plain", on ? "" : "1"); } catch { /* a convenience */ }
  if (on) renderNow(); else renderedEl.replaceChildren();
}
$("render-btn").addEventListener("click", () => setRendered(!renderedOn));

function applyOp(op) {
  const changes = changesFromOp(index, op);
  const tr = view.state.update({ changes });
  const list = [];
  tr.changes.iterChanges((fromA, toA, fromB, toB) => list.push({ fromA, toA, fromB, toB }));
  view.dispatch(tr);
  index.map(list, (a, b) => view.state.doc.sliceString(a, b), view.state.doc.length);
  if (list.length) changedLine = view.state.doc.lineAt(list[list.length - 1].toB).number - 1;
  scheduleRender();
  // Follow the writer: bring the last change into view.
  if (followEl.checked && list.length) {
    view.dispatch({ effects: EditorView.scrollIntoView(list[list.length - 1].toB, { y: "nearest", yMargin: 48 }) });
  }
}

// ---- comment threads, when the owner shares them -------------------------------------

// The highlights are in the plain text; the list is beside either view.
// Showing a thread's text switches to the plain text.
const commentPane = new CommentPane({ view, index: () => index, readOnly: true, reveal: () => { if (renderedOn) setRendered(false); } });
let threads = null;
function showComments(on) {
  $("comments-btn").hidden = !on;
  $("comments").hidden = !on;
  if (!on) { commentPane.toggle(false); commentPane.update(new Map()); }
}

function start() {
  if (!uuidRe.test(viewId)) { notFound(); return; }
  if (!threads) threads = new ViewerComments({ viewId, pane: commentPane, show: showComments });
  const viewer = new CollabViewer({ viewId });
  setStatus("connecting", "Connecting…");
  viewer.on("status", (s) => setStatus(s, s === "live" ? "Live" : "Reconnecting…"));
  viewer.on("snapshot", (d) => {
    replace(d.text);
    threads.snapshot(d.rev);
    revEl.textContent = `revision ${d.rev}`;
    retitle();
    setStatus("live", "Live");
  });
  viewer.on("change", (c) => {
    if (c.reset) return; // a snapshot, drawn above
    applyOp(c.op);
    threads.change(c.op, c.rev);
    revEl.textContent = `revision ${c.rev}`;
    retitle();
  });
  viewer.on("error", (err) => {
    if (err.status === 404 || err.status === 403) { threads.stop(); notFound(err.status); return; }
    setStatus("offline", "Reconnecting…");
    setTimeout(start, 3000);
  });
}

async function notFound(status) {
  const who = await whoAmI;
  const b = $("banner");
  if (!who.off) {
    // With sign-in on, 404 is also what a private document answers.
    setStatus("failed", "No access");
    noAccess(b, who, status === 403);
    $("title").textContent = "No access";
    document.title = "No access · collabd";
    document.body.classList.add("failed");
    return;
  }
  setStatus("failed", "Not found");
  b.replaceChildren();
  const p = document.createElement("p");
  p.innerHTML = "<strong>No document has this view link.</strong> It may have been deleted, or the link was cut short when it was copied.";
  const a = document.createElement("p");
  a.className = "actions";
  a.innerHTML = '<a class="button" href="/">Start a document</a>';
  b.append(p, a);
  b.hidden = false;
  $("title").textContent = "Not found";
  document.title = "Not found · collabd";
  document.body.classList.add("failed");
}

wireExport($("download"), $("export-menu"), () => view.state.doc.toString(), () => lastTitle, $("print"));
window.collabdViewer = { view, comments: commentPane }; // for the browser tests
setRendered(!localStorage.getItem("collabd-view-plain"));
start();
