// view.js: the read-only page. It follows the document over Server-Sent
// Events with the SDK's CollabViewer (which reconnects by itself and
// resumes with Last-Event-ID) into a read-only CodeMirror, and scrolls to
// each change while "Follow" is on. It knows only the view id: nothing it
// fetches or shows can contain the edit id.

import { EditorState } from "@codemirror/state";
import { EditorView, lineNumbers, highlightSpecialChars } from "@codemirror/view";
import { search, searchKeymap } from "@codemirror/search";
import { keymap } from "@codemirror/view";
import { CollabViewer, AstralIndex, changesFromOp } from "./sdk/collabd.js";
import { $, uuidRe, titleOf, download, registerOffline, shadowMount } from "./common.js";

registerOffline();

const viewId = location.hash.slice(1).toLowerCase();
const statusEl = $("status"), revEl = $("rev"), followEl = $("follow");
let index = new AstralIndex("");

const view = new EditorView({
  parent: shadowMount($("doc")).mount,
  state: EditorState.create({
    extensions: [
      lineNumbers(), highlightSpecialChars(), EditorView.lineWrapping, EditorState.readOnly.of(true),
      EditorView.editable.of(false), search({ top: true }), keymap.of(searchKeymap),
      EditorView.contentAttributes.of({ "aria-label": "Document text (read-only)", tabindex: "0" }),
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
}

function applyOp(op) {
  const changes = changesFromOp(index, op);
  const tr = view.state.update({ changes });
  const list = [];
  tr.changes.iterChanges((fromA, toA, fromB, toB) => list.push({ fromA, toA, fromB, toB }));
  view.dispatch(tr);
  index.map(list, (a, b) => view.state.doc.sliceString(a, b), view.state.doc.length);
  // Follow the writer: bring the last change into view.
  if (followEl.checked && list.length) {
    view.dispatch({ effects: EditorView.scrollIntoView(list[list.length - 1].toB, { y: "nearest", yMargin: 48 }) });
  }
}

function start() {
  if (!uuidRe.test(viewId)) { notFound(); return; }
  const viewer = new CollabViewer({ viewId });
  setStatus("connecting", "Connecting…");
  viewer.on("status", (s) => setStatus(s, s === "live" ? "Live" : "Reconnecting…"));
  viewer.on("snapshot", (d) => {
    replace(d.text);
    revEl.textContent = `revision ${d.rev}`;
    retitle();
    setStatus("live", "Live");
  });
  viewer.on("change", (c) => {
    if (c.reset) return; // a snapshot, drawn above
    applyOp(c.op);
    revEl.textContent = `revision ${c.rev}`;
    retitle();
  });
  viewer.on("error", (err) => {
    if (err.code === "not_found") { notFound(); return; }
    setStatus("offline", "Reconnecting…");
    setTimeout(start, 3000);
  });
}

function notFound() {
  setStatus("failed", "Not found");
  const b = $("banner");
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

$("download").addEventListener("click", () => download(view.state.doc.toString(), lastTitle));
window.collabdViewer = { view }; // for the browser tests
start();
