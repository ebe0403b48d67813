// comments.js: the comment margin of the editor page (docs/comments.md).
// The document (the SDK's CollabDocument) keeps the threads and moves their ranges with every op;
// this module only draws them: highlighted ranges in the text, a list of
// threads in text order beside it (a sheet on narrow screens), the count
// in the header, and the forms that create, reply, resolve and delete,
// which go to the HTTP API. The WebSocket brings every change back.
// With readOnly (the view page, view.js) it draws the same highlights and
// list without any form or button that would change a thread.

import { StateField, StateEffect } from "@codemirror/state";
import { EditorView, Decoration } from "@codemirror/view";
import { $, el, ago } from "./common.js";

const setCommentDecos = StateEffect.define();
const commentDecos = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    for (const e of tr.effects) if (e.is(setCommentDecos)) return e.value;
    return tr.docChanged ? deco.map(tr.changes) : deco;
  },
  provide: (f) => EditorView.decorations.from(f),
});

const theme = EditorView.theme({
  ".cm-comment": { backgroundColor: "var(--comment-bg)", borderBottom: "2px solid var(--comment-line)", cursor: "pointer" },
  ".cm-comment-current": { backgroundColor: "var(--comment-current)" },
});

// commentExtensions go into the editor's extensions.
export const commentExtensions = [commentDecos, theme];

// CommentPane draws the threads of doc() into the page.
// opts: {view, index: () => AstralIndex, doc: () => CollabDocument, docId,
// clientId, name: () => string}, or for a viewer {view, index, readOnly:
// true, reveal?: () => void (called before a thread's text is selected)}.
export class CommentPane {
  constructor(opts) {
    this.doc = () => null;
    Object.assign(this, opts);
    this.threads = new Map();
    this.items = new Map(); // thread id -> {li, key}
    this.current = null; // the thread id shown as current
    this.listEl = $("comment-list");
    this.countEl = $("comment-count");
    this.pane = $("comments");
    this.timer = 0;
    if (!this.readOnly) $("comment-form").addEventListener("submit", (e) => { e.preventDefault(); this.create(); });
    $("comments-btn").addEventListener("click", () => this.toggle());
    $("comment-show-resolved").addEventListener("change", () => this.draw());
    // A click in highlighted text shows its thread. A read-only editor
    // does not move its selection on a click: ask where the click was.
    this.view.dom.addEventListener("click", (e) => {
      const pos = this.readOnly ? this.view.posAtCoords({ x: e.clientX, y: e.clientY }) : this.view.state.selection.main.head;
      if (pos == null) return;
      const hit = this.threadAt(pos);
      if (hit) this.focus(hit, false);
    });
  }

  // update is the document's "comments" event: the threads changed.
  update(threads) { this.threads = threads; this.draw(); }

  // changed is called after every change of the text: line numbers and
  // quotes are redrawn a little later, the highlights CodeMirror maps.
  changed() {
    if (!this.timer) this.timer = setTimeout(() => { this.timer = 0; this.draw(); }, 300);
  }

  toggle(open) {
    const now = open ?? !this.pane.classList.contains("open");
    this.pane.classList.toggle("open", now);
    $("comments-btn").setAttribute("aria-expanded", String(now));
  }

  units(t) {
    const idx = this.index(), len = this.view.state.doc.length;
    return [Math.min(idx.cpToUnit(t.range[0]), len), Math.min(idx.cpToUnit(t.range[1]), len)];
  }

  threadAt(unit) {
    for (const t of this.threads.values()) {
      if (t.resolved) continue;
      const [a, b] = this.units(t);
      if (a < b && unit >= a && unit <= b) return t.id;
    }
    return null;
  }

  sorted() {
    return [...this.threads.values()].sort((x, y) => x.range[0] - y.range[0] || (x.time < y.time ? -1 : 1));
  }

  draw() {
    const all = this.sorted();
    const open = all.filter((t) => !t.resolved);
    this.countEl.textContent = String(open.length);
    $("comments-btn").title = `${open.length} open comment thread${open.length === 1 ? "" : "s"}`;
    const resolvedCount = all.length - open.length;
    $("comment-resolved-count").textContent = resolvedCount ? ` (${resolvedCount})` : "";
    // Highlights: open threads only, the current one stronger.
    const decos = [];
    for (const t of open) {
      const [a, b] = this.units(t);
      if (a < b) decos.push(Decoration.mark({ class: t.id === this.current ? "cm-comment cm-comment-current" : "cm-comment", attributes: { "data-thread": t.id } }).range(a, b));
    }
    this.view.dispatch({ effects: setCommentDecos.of(Decoration.set(decos, true)) });
    const showResolved = $("comment-show-resolved").checked;
    const shown = showResolved ? all : open;
    // Keyed: a thread's item is rebuilt only when it changed, so that a
    // reply being typed keeps its focus and text.
    const keep = new Set();
    const nodes = [];
    for (const t of shown) {
      keep.add(t.id);
      const key = this.keyOf(t);
      let item = this.items.get(t.id);
      if (!item || item.key !== key) {
        const li = this.renderThread(t);
        if (item) {
          const draft = item.li.querySelector("input.reply-text");
          const focused = draft && draft === document.activeElement;
          if (draft && draft.value) li.querySelector("input.reply-text").value = draft.value;
          item.li.replaceWith(li);
          if (focused) li.querySelector("input.reply-text").focus();
        }
        item = { li, key };
        this.items.set(t.id, item);
      }
      nodes.push(item.li);
    }
    for (const [id, item] of this.items) if (!keep.has(id)) { item.li.remove(); this.items.delete(id); }
    // Reorder only when the order changed: moving a node takes its focus.
    const now = [...this.listEl.children];
    if (now.length !== nodes.length || now.some((n, i) => n !== nodes[i])) this.listEl.replaceChildren(...nodes);
    $("comment-empty").hidden = shown.length > 0;
  }

  keyOf(t) {
    const [a, b] = this.units(t);
    const doc = this.view.state.doc;
    const line = doc.lineAt(a).number;
    const quote = doc.sliceString(a, Math.min(b, a + 80));
    return JSON.stringify([t.text, t.resolved, t.detached, t.edited, t.replies, line, quote, t.id === this.current, this.doc()?.author]);
  }

  renderThread(t) {
    const doc = this.view.state.doc;
    const [a, b] = this.units(t);
    const line = doc.lineAt(a).number;
    const quote = doc.sliceString(a, Math.min(b, a + 80)).replace(/\s+/g, " ");
    const mine = (author) => author && author === this.doc()?.author;
    const where = t.detached || a === b
      ? el("span", { class: "detached" }, `line ${line} · its text was deleted`)
      : el("span", {}, `line ${line} · “${quote}${b - a > 80 ? "…" : ""}”`);
    const li = el("li", { class: "thread", "data-id": t.id, "data-resolved": String(!!t.resolved), tabindex: "-1" },
      el("button", { type: "button", class: "quote", title: "Show in the text", onclick: () => this.focus(t.id, true) }, where),
      el("p", { class: "c-head" }, el("strong", {}, t.name || "Anonymous"), el("span", { class: "muted" }, ` · ${ago(Date.parse(t.time))}${t.edited ? " · edited" : ""}`)),
      el("p", { class: "c-text" }, t.text));
    if (t.replies.length) {
      li.append(el("ol", { class: "replies" }, ...t.replies.map((r) => el("li", { "data-id": r.id },
        el("strong", {}, r.name || "Anonymous"), " ", el("span", { class: "c-text" }, r.text),
        !this.readOnly && mine(r.author) ? el("button", { type: "button", class: "small link", "aria-label": "Delete your reply", onclick: () => this.send("DELETE", `/${t.id}/replies/${r.id}`) }, "Delete") : null))));
    }
    if (this.readOnly) {
      if (t.resolved) li.append(el("p", { class: "muted" }, "Resolved"));
      return li;
    }
    const replyText = el("input", { class: "reply-text", maxlength: "10000", placeholder: "Reply…", "aria-label": `Reply to ${t.name || "Anonymous"}` });
    const form = el("form", { class: "reply" }, replyText, el("button", { type: "submit", class: "small" }, "Reply"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!replyText.value.trim()) return;
      if (await this.send("POST", `/${t.id}/replies`, { text: replyText.value, client: this.clientId, name: this.name() })) replyText.value = "";
    });
    li.append(form, el("p", { class: "actions" },
      el("button", { type: "button", class: "small", onclick: () => this.send("PATCH", `/${t.id}`, { resolved: !t.resolved }) }, t.resolved ? "Reopen" : "Resolve"),
      mine(t.author) ? el("button", { type: "button", class: "small", onclick: () => this.send("DELETE", `/${t.id}`, { client: this.clientId }) }, "Delete") : null));
    return li;
  }

  // markdown returns the threads as a section to append to the text in
  // an export: where each sits, who wrote what, and whether it is
  // resolved. Empty when there are none.
  markdown() {
    const all = this.sorted();
    if (!all.length) return "";
    const doc = this.view.state.doc;
    const oneLine = (s) => s.replace(/\s*\n\s*/g, " ");
    const lines = ["", "", "---", "", "## Comments", ""];
    for (const t of all) {
      const [a, b] = this.units(t);
      const where = t.detached || a === b ? `line ${doc.lineAt(a).number}, its text deleted` : `“${oneLine(doc.sliceString(a, b))}” (line ${doc.lineAt(a).number})`;
      lines.push(`- **${t.name || "Anonymous"}** on ${where}${t.resolved ? ", resolved" : ""}: ${oneLine(t.text)}`);
      for (const r of t.replies) lines.push(`  - **${r.name || "Anonymous"}**: ${oneLine(r.text)}`);
    }
    return `${lines.join("\n")}\n`;
  }

  // focus shows thread id as current: in the list, and with select, its
  // text selected in the editor.
  focus(id, select) {
    const t = this.threads.get(id);
    if (!t) return;
    this.current = id;
    this.toggle(true);
    this.draw();
    const item = this.items.get(id);
    if (item) { item.li.scrollIntoView({ block: "nearest" }); if (!select) item.li.focus({ preventScroll: true }); }
    if (select) {
      if (this.reveal) this.reveal();
      const [a, b] = this.units(t);
      this.view.dispatch({ selection: { anchor: a, head: b }, scrollIntoView: true });
      this.view.focus();
    }
  }

  async create() {
    const textEl = $("comment-text"), msg = $("comment-msg");
    const text = textEl.value;
    if (!text.trim()) { msg.textContent = "Write a comment first."; return; }
    const d = this.doc();
    if (!d || !d.editable) { msg.textContent = "Not connected yet."; return; }
    // A range is sent at a revision the server has: wait until our own
    // edits are acknowledged (the selection moves with remote ones).
    for (let i = 0; i < 100 && d.pending > 0; i++) await new Promise((r) => setTimeout(r, 50));
    const sel = this.view.state.selection.main;
    if (sel.empty) { msg.textContent = "Select the text to comment on first."; return; }
    const idx = this.index();
    const range = [idx.unitToCp(sel.from), idx.unitToCp(sel.to)];
    if (await this.send("POST", "", { rev: d.rev, range, text, client: this.clientId, name: this.name() })) {
      textEl.value = "";
      msg.textContent = "";
    }
  }

  // send makes one request to the comment API; it says why when it fails.
  async send(method, path, body) {
    const msg = $("comment-msg");
    try {
      const r = await fetch(`/api/docs/${encodeURIComponent(this.docId)}/comments${path}`, {
        method, headers: body ? { "Content-Type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined,
      });
      if (r.ok) { msg.textContent = ""; return true; }
      let why = r.statusText;
      try { why = (await r.json()).error.message; } catch { /* not JSON */ }
      msg.textContent = r.status === 429 ? "Too many comments at once; try again in a moment." : `Not saved: ${why}`;
    } catch {
      msg.textContent = "Not saved: the server cannot be reached.";
    }
    return false;
  }
}
