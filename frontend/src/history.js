// history.js: the timeslider. It scrubs through the document's revisions
// over the history API (GET /api/docs/{id}?rev=R for the text,
// /revisions for who and when, /ops for what op R inserted, which the
// preview highlights) and restores one (POST /api/docs/{id}/restore).
// Runs that scripts and agents made over HTTP (rows of /revisions with
// "run") are listed, each with a "Revert this run" action (POST
// /api/docs/{id}/revert {"run"}).
// "Find in history" asks which revisions held a phrase (GET
// /api/docs/{id}/history/search), lists where it appeared and where it
// went, each a button that moves the slider there, and marks the phrase
// in the preview.
// Loading is lazy: one revision at a time, whatever the document's length.

import { EditorState, StateField, StateEffect } from "@codemirror/state";
import { EditorView, lineNumbers, Decoration } from "@codemirror/view";
import { AstralIndex } from "./positions.js";
import { $, errorWords, shadowMount } from "./common.js";
import { authorStyler, runRanges } from "./authors.js";

const setMarks = StateEffect.define();
const marks = StateField.define({
  create: () => Decoration.none,
  update(d, tr) { for (const e of tr.effects) if (e.is(setMarks)) return e.value; return d; },
  provide: (f) => EditorView.decorations.from(f),
});

const setAuthorMarks = StateEffect.define();
const authorMarks = StateField.define({
  create: () => Decoration.none,
  update(d, tr) { for (const e of tr.effects) if (e.is(setAuthorMarks)) return e.value; return tr.docChanged ? Decoration.none : d; },
  provide: (f) => EditorView.decorations.from(f),
});

let preview = null, opts = null, timer = 0, loading = 0, styleAuthor = null;

async function getJSON(url, init) {
  const r = await fetch(url, { cache: "no-store", ...init });
  let body = null;
  try { body = await r.json(); } catch { /* not JSON */ }
  if (!r.ok) {
    const err = new Error(body && body.error ? errorWords(body.error.code, body.error.message) : `HTTP ${r.status}`);
    err.status = r.status;
    throw err;
  }
  return body;
}

function who(author, given) {
  if (!author) return "the server (a restore)";
  if (author === opts.myAuthor()) return `${opts.you()} (you)`;
  const name = given || opts.names.get(author);
  return name ? name : `someone (${author.slice(0, 6)})`;
}

// runsWindow is how many of the latest revisions the run list looks at.
const runsWindow = 1000;

// loadRuns lists the runs among the latest revisions, newest first, each
// with a button that reverts it.
async function loadRuns() {
  const head = opts.head();
  const rows = await getJSON(`/api/docs/${opts.docId}/revisions?from=${Math.max(0, head - runsWindow)}&limit=${runsWindow}`);
  const runs = new Map();
  for (const r of rows) {
    if (!r.run) continue;
    let g = runs.get(r.run);
    if (!g) runs.set(r.run, g = { run: r.run, author: r.author, name: r.name, reverts: r.reverts, first: r.rev, last: r.rev, time: r.time, inserted: 0, deleted: 0 });
    g.last = r.rev; g.inserted += r.inserted; g.deleted += r.deleted;
  }
  const list = $("hist-runs-list");
  list.replaceChildren();
  for (const g of [...runs.values()].reverse()) {
    const li = document.createElement("li");
    li.dataset.run = g.run;
    li.dataset.first = String(g.first);
    li.dataset.last = String(g.last);
    const what = document.createElement("span");
    what.className = "run-what";
    const revs = g.first === g.last ? `revision ${g.first}` : `revisions ${g.first}–${g.last}`;
    const reverted = g.reverts && runs.get(g.reverts);
    const act = !g.reverts ? "" : reverted ? ` reverted ${who(reverted.author, reverted.name)}'s run` : " reverted a run";
    what.textContent = `${who(g.author, g.name)}${act} · ${revs} · +${g.inserted} −${g.deleted} · ${new Date(g.time).toLocaleString()}`;
    what.title = `run ${g.run}`;
    const btn = document.createElement("button");
    btn.type = "button";
    btn.className = "run-revert";
    btn.textContent = "Revert this run";
    btn.addEventListener("click", () => revertRun(g.run, btn));
    li.append(what, btn);
    list.append(li);
  }
  $("hist-runs").hidden = runs.size === 0;
  markRun(Number($("hist-slider").value));
}

// markRun marks the run that made revision rev, if any, in the list.
function markRun(rev) {
  for (const li of $("hist-runs-list").children) {
    li.classList.toggle("current", Number(li.dataset.first) <= rev && rev <= Number(li.dataset.last));
  }
}

async function revertRun(run, btn) {
  btn.disabled = true;
  try {
    const r = await getJSON(`/api/docs/${opts.docId}/revert`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(opts.name && opts.name() ? { run, name: opts.name() } : { run }),
    });
    $("hist-info").textContent = `Reverted the run as revision ${r.rev}.`;
    // Refresh: the slider reaches the new head, the preview shows it.
    const slider = $("hist-slider");
    slider.max = String(Math.max(r.rev, opts.head()));
    slider.value = String(r.rev);
    await show(r.rev, `Reverted the run as revision ${r.rev}.`);
    await loadRuns();
  } catch (err) {
    $("hist-info").textContent = `Could not revert the run: ${err.message}`;
  } finally {
    btn.disabled = false;
  }
}

// insertedRanges returns the code point ranges op inserted, in the text it made.
function insertedRanges(op) {
  const out = [];
  let pos = 0;
  for (const c of op) {
    if (typeof c === "string") { const n = Array.from(c).length; out.push([pos, pos + n]); pos += n; }
    else if (c > 0) pos += c;
  }
  return out;
}

async function show(rev, note) {
  const id = ++loading;
  const base = `/api/docs/${opts.docId}`;
  $("hist-info").textContent = `Loading revision ${rev}…`;
  try {
    const [doc, meta, ops, authors] = await Promise.all([
      getJSON(`${base}?rev=${rev}`),
      rev > 0 ? getJSON(`${base}/revisions?from=${rev - 1}&limit=1`) : Promise.resolve([]),
      rev > 0 ? getJSON(`${base}/ops?from=${rev - 1}`) : Promise.resolve([]),
      opts.authorColors && opts.authorColors() ? getJSON(`${base}/authors?rev=${rev}`).catch(() => null) : Promise.resolve(null),
    ]);
    if (id !== loading) return;
    const idx = new AstralIndex(doc.text);
    preview.dispatch({ changes: { from: 0, to: preview.state.doc.length, insert: doc.text } });
    const op = ops.find((o) => o.rev === rev);
    const ranges = op ? insertedRanges(op.op).map(([a, b]) => [idx.cpToUnit(a), idx.cpToUnit(b)]) : [];
    const found = foundRanges(preview.state.doc.toString(), foundPhrase);
    const at = ranges.length ? ranges[0][0] : found.length ? found[0][0] : -1;
    preview.dispatch({
      effects: [setMarks.of(Decoration.set([
        ...ranges.filter(([a, b]) => a < b).map(([a, b]) => Decoration.mark({ class: "cm-hist-ins" }).range(a, b)),
        ...found.map(([a, b]) => Decoration.mark({ class: "cm-hist-found" }).range(a, b)),
      ], true)),
      ...(at >= 0 ? [EditorView.scrollIntoView(at, { y: "center" })] : [])],
    });
    if (authors) {
      const len = preview.state.doc.length;
      const decos = runRanges(authors.runs, idx, len).map(([f, t, au]) => Decoration.mark({ class: styleAuthor(au) }).range(f, t));
      preview.dispatch({ effects: setAuthorMarks.of(Decoration.set(decos, true)) });
      opts.showLegend(authors.runs, authors.names);
    }
    const m = meta.find((x) => x.rev === rev);
    const parts = [`Revision ${rev} of ${Math.max(opts.head(), Number($("hist-slider").max))}`];
    if (m) {
      parts.push(new Date(m.time).toLocaleString(), `by ${who(m.author, m.name)}${m.run ? " (a run over HTTP)" : ""}`, `+${m.inserted} −${m.deleted}`);
    } else if (rev === 0) parts.push("the empty document");
    if (note) parts.unshift(note);
    $("hist-info").textContent = parts.join(" · ");
    markRun(rev);
    for (const b of $("hist-found-list").querySelectorAll("button")) b.classList.toggle("current", Number(b.dataset.rev) === rev);
    $("hist-restore").disabled = rev === Math.max(opts.head(), Number($("hist-slider").max));
    $("history").dataset.rev = String(rev);
  } catch (err) {
    if (id === loading) $("hist-info").textContent = `Could not load revision ${rev}: ${err.message}`;
  }
}

// foundRanges returns where phrase occurs in text, ignoring case as the
// server does, as [from, to) in the preview's positions (UTF-16 units).
function foundRanges(text, phrase) {
  if (!phrase) return [];
  let hay = text.toLowerCase(), needle = phrase.toLowerCase();
  if (hay.length !== text.length || needle.length !== phrase.length) { hay = text; needle = phrase; }
  const out = [];
  for (let i = hay.indexOf(needle); i >= 0 && out.length < 1000; i = hay.indexOf(needle, i + 1)) out.push([i, i + needle.length]);
  return out;
}

// findPages bounds the requests of one search: each goes through up to a
// million revisions or two seconds of the server's time.
const findPages = 50;
let finding = 0, foundPhrase = "";

// find lists the revisions where phrase appeared and disappeared.
async function find(phrase) {
  const id = ++finding;
  const info = $("hist-found-info"), list = $("hist-found-list");
  list.replaceChildren();
  foundPhrase = phrase;
  $("hist-found").hidden = !phrase;
  if (!phrase) { show(Number($("hist-slider").value)); return; }
  info.textContent = `Looking for “${phrase}” in every revision…`;
  const spans = [];
  let from = 0, a = null, busy = 0;
  try {
    for (let page = 0; page < findPages; page++) {
      try {
        a = await getJSON(`/api/docs/${opts.docId}/history/search?q=${encodeURIComponent(phrase)}&from=${from}`);
      } catch (err) {
        if (err.status !== 429 || ++busy > 5) throw err;
        await new Promise((r) => setTimeout(r, 1000)); // others are searching: wait a little
        page--;
        continue;
      }
      if (id !== finding) return;
      let got = a.spans;
      // A span the last page left open continues where this one starts.
      if (got.length && spans.length && spans[spans.length - 1].to === null && got[0].from === from) {
        spans[spans.length - 1].to = got[0].to;
        got = got.slice(1);
      }
      spans.push(...got);
      if (a.complete) break;
      from = a.scanned;
      info.textContent = `Looking for “${phrase}”… revision ${from} of ${a.head}`;
    }
  } catch (err) {
    if (id === finding) info.textContent = `Could not search the history: ${err.message}`;
    return;
  }
  const rev = (r, label) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.rev = String(r);
    b.textContent = label;
    b.addEventListener("click", () => pick(r));
    return b;
  };
  for (const sp of spans) {
    const li = document.createElement("li");
    li.append(rev(sp.from, `Appeared in revision ${sp.from}`));
    if (sp.to !== null) li.append(rev(sp.to, `Gone in revision ${sp.to}`));
    else {
      const still = document.createElement("span");
      still.className = "muted";
      still.textContent = a.complete ? "still in the text" : `still there at revision ${a.scanned}`;
      li.append(still);
    }
    list.append(li);
  }
  const upTo = a.complete ? "" : ` (searched up to revision ${a.scanned} of ${a.head})`;
  info.textContent = spans.length === 0 ? `“${phrase}” is in no revision${upTo}.`
    : `“${phrase}” appeared ${spans.length === 1 ? "once" : `${spans.length} times`}${upTo}:`;
  show(Number($("hist-slider").value));
}

function pick(rev) {
  const slider = $("hist-slider");
  if (slider.disabled) return;
  unconfirm();
  rev = Math.max(0, Math.min(Number(slider.max), rev));
  slider.value = String(rev);
  clearTimeout(timer);
  timer = setTimeout(() => show(rev), 120);
}

function close() {
  if (opts.closed) opts.closed();
  $("history").hidden = true;
  $("editor").hidden = false;
  $("history-btn").setAttribute("aria-expanded", "false");
  $("history-btn").focus();
}

export async function openHistory(o) {
  opts = o;
  const panel = $("history");
  if (!preview) {
    const shadow = shadowMount($("hist-preview"));
    styleAuthor = authorStyler(shadow.root);
    preview = new EditorView({
      parent: shadow.mount,
      state: EditorState.create({
        extensions: [lineNumbers(), EditorView.lineWrapping, EditorState.readOnly.of(true), EditorView.editable.of(false), marks, authorMarks,
          EditorView.contentAttributes.of({ "aria-label": "Text at this revision" }),
          EditorView.theme({ "&": { height: "100%", color: "var(--fg)", backgroundColor: "var(--bg)", fontSize: "var(--editor-size, 15px)" },
            ".cm-scroller": { lineHeight: "1.5", fontFamily: "var(--mono)" },
            ".cm-hist-ins": { backgroundColor: "var(--ins)" },
            ".cm-hist-found": { backgroundColor: "var(--comment-current)", borderRadius: "2px" },
            ".cm-gutters": { backgroundColor: "var(--bg2)", color: "var(--muted)", borderRight: "1px solid var(--line)" },
          })],
      }),
    });
    $("hist-slider").addEventListener("input", (e) => pick(Number(e.target.value)));
    $("hist-prev").addEventListener("click", () => pick(Number($("hist-slider").value) - 1));
    $("hist-next").addEventListener("click", () => pick(Number($("hist-slider").value) + 1));
    $("hist-close").addEventListener("click", close);
    panel.addEventListener("keydown", (e) => { if (e.key === "Escape") close(); });
    $("hist-restore").addEventListener("click", restore);
    $("hist-find").addEventListener("submit", (e) => { e.preventDefault(); find($("hist-q").value); });
    $("hist-restore-cancel").addEventListener("click", () => { unconfirm(); show(Number($("hist-slider").value)); });
  }
  panel.hidden = false;
  $("editor").hidden = true;
  $("history-btn").setAttribute("aria-expanded", "true");
  const head = opts.head();
  const slider = $("hist-slider");
  slider.max = String(head);
  slider.value = String(head);
  slider.focus();
  // A server without the history API answers 404 or 405 here.
  try {
    await getJSON(`/api/docs/${opts.docId}/revisions?from=${Math.max(0, head - 1)}&limit=1`);
  } catch (err) {
    $("hist-info").textContent = err.status === 404 || err.status === 405
      ? "This server does not keep a browsable history." : `History is unavailable: ${err.message}`;
    panel.dataset.unavailable = "true";
    for (const id of ["hist-slider", "hist-prev", "hist-next", "hist-restore", "hist-q", "hist-find-go"]) $(id).disabled = true;
    $("hist-runs").hidden = true;
    $("hist-close").focus();
    return;
  }
  delete panel.dataset.unavailable;
  for (const id of ["hist-slider", "hist-prev", "hist-next", "hist-q", "hist-find-go"]) $(id).disabled = false;
  show(head);
  loadRuns().catch((err) => { $("hist-info").textContent = `Could not list the runs: ${err.message}`; });
}

// restore asks first: the first click on "Restore this revision" turns
// it into a confirmation naming what happens; the second restores. Once
// done, the editor shows a notice with "Undo restore", which restores the
// revision just before the restore (docs/protocol.md: that undoes it).
let confirming = -1;

function unconfirm() {
  confirming = -1;
  $("hist-restore").textContent = "Restore this revision";
  $("hist-restore-cancel").hidden = true;
}

async function restore() {
  const rev = Number($("hist-slider").value);
  if (confirming !== rev) {
    confirming = rev;
    $("hist-restore").textContent = `Replace the text with revision ${rev}`;
    $("hist-restore-cancel").hidden = false;
    $("hist-info").textContent = `Restoring makes the text what it was at revision ${rev}, for everyone; you can undo it afterwards.`;
    return;
  }
  unconfirm();
  $("hist-restore").disabled = true;
  try {
    const r = await postRestore(rev);
    $("hist-info").textContent = `Restored revision ${rev} as revision ${r.rev}.`;
    offerUndo(rev, r.rev);
    setTimeout(close, 800);
  } catch (err) {
    $("hist-info").textContent = `Could not restore: ${err.message}`;
    $("hist-restore").disabled = false;
  }
}

function postRestore(rev) {
  return getJSON(`/api/docs/${opts.docId}/restore`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ rev }),
  });
}

function offerUndo(from, made) {
  const box = $("restored"), undo = $("restored-undo");
  $("restored-text").textContent = `Restored revision ${from}.`;
  undo.disabled = false;
  undo.hidden = false;
  box.hidden = false;
  undo.onclick = async () => {
    undo.disabled = true;
    try {
      const r = await postRestore(made - 1);
      $("restored-text").textContent = `Undone: the text is as before the restore (revision ${r.rev}).`;
      undo.hidden = true;
    } catch (err) {
      $("restored-text").textContent = `Could not undo the restore: ${err.message}`;
      undo.disabled = false;
    }
  };
  $("restored-close").onclick = () => { box.hidden = true; undo.hidden = false; };
}
