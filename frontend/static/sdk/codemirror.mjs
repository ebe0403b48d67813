// sdk/codemirror.js
import { Annotation, StateEffect, StateField, Transaction } from "@codemirror/state";
import { Decoration, EditorView, ViewPlugin, WidgetType } from "@codemirror/view";
import { AstralIndex, opFromChanges, changesFromOp } from "./collabd.mjs";
var fromCollab = Annotation.define();
var collabAuthor = Annotation.define();
var bound = /* @__PURE__ */ new WeakMap();
function collabIndex(view) {
  return bound.get(view)?.index || null;
}
var sheets = /* @__PURE__ */ new WeakMap();
function colorClass(view, color) {
  const hex = /^#[0-9a-f]{6}$/i.test(color) ? color.slice(1).toLowerCase() : "888888";
  const root = view.root;
  let s = sheets.get(root);
  if (!s) {
    if (typeof CSSStyleSheet !== "function" || !("adoptedStyleSheets" in root)) return "";
    s = { sheet: new CSSStyleSheet(), done: /* @__PURE__ */ new Set() };
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, s.sheet];
    sheets.set(root, s);
  }
  if (!s.done.has(hex)) {
    s.sheet.insertRule(`.cm-collab-c-${hex} { background-color: #${hex}40; }`);
    s.done.add(hex);
  }
  return `cm-collab-c-${hex}`;
}
var CaretWidget = class extends WidgetType {
  // top: the caret is on the first line, where a label above would be cut
  // off: it goes below.
  constructor(name, color, top) {
    super();
    this.name = name;
    this.color = color;
    this.top = top;
  }
  eq(o) {
    return o.name === this.name && o.color === this.color && o.top === this.top;
  }
  toDOM() {
    const caret = document.createElement("span");
    caret.className = this.top ? "cm-collab-caret cm-collab-top" : "cm-collab-caret";
    caret.setAttribute("aria-hidden", "true");
    caret.dataset.name = this.name;
    caret.style.borderLeftColor = this.color;
    const label = document.createElement("span");
    label.className = "cm-collab-label";
    label.textContent = this.name;
    label.style.backgroundColor = this.color;
    caret.append(label);
    return caret;
  }
  ignoreEvent() {
    return true;
  }
};
var setPeers = StateEffect.define();
var peerField = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    for (const e of tr.effects) if (e.is(setPeers)) return e.value;
    return tr.docChanged ? deco.map(tr.changes) : deco;
  },
  provide: (f) => EditorView.decorations.from(f)
});
var theme = EditorView.baseTheme({
  ".cm-collab-caret": { position: "relative", borderLeft: "2px solid", marginLeft: "-1px", marginRight: "-1px" },
  ".cm-collab-label": {
    position: "absolute",
    left: "-2px",
    bottom: "100%",
    font: "600 11px/1.3 system-ui, sans-serif",
    color: "#fff",
    padding: "0 .35em",
    borderRadius: "3px 3px 3px 0",
    whiteSpace: "nowrap",
    pointerEvents: "none",
    zIndex: "5",
    opacity: ".92"
  },
  ".cm-collab-top .cm-collab-label": { bottom: "auto", top: "100%", borderRadius: "0 3px 3px 3px" }
});
function collab(doc, { presence = true, selectionDelay = 50, drawDelay = 80 } = {}) {
  const plugin = ViewPlugin.fromClass(class {
    constructor(view) {
      this.view = view;
      this.index = new AstralIndex(view.state.doc.toString());
      this.selTimer = 0;
      this.drawTimer = 0;
      bound.set(view, this);
      this.offChange = doc.on("change", (ch) => {
        if (!ch.local) this.remote(ch);
      });
      this.offPresence = presence ? doc.on("presence", () => this.scheduleDraw()) : () => {
      };
      if (view.state.doc.toString() !== doc.text) {
        queueMicrotask(() => this.dispatchRemote([{ from: 0, to: this.view.state.doc.length, insert: doc.text }], null));
      }
      if (presence) queueMicrotask(() => this.drawPeers());
    }
    update(u) {
      for (const tr of u.transactions) {
        if (!tr.docChanged) continue;
        const changes = [], inserted = [];
        tr.changes.iterChanges((fromA, toA, fromB, toB, ins) => {
          changes.push({ fromA, toA, fromB, toB });
          inserted.push(ins);
        });
        const local = !tr.annotation(fromCollab);
        const op = local ? opFromChanges(this.index, changes, (k) => inserted[k].toString(), tr.startState.doc.length) : null;
        this.index.map(changes, (a, b) => tr.state.doc.sliceString(a, b), tr.state.doc.length);
        if (local) doc.applyOp(op);
      }
      if (presence && u.transactions.some((tr) => !tr.annotation(fromCollab) && (tr.docChanged || tr.selection))) this.scheduleSelection();
    }
    scheduleSelection() {
      if (selectionDelay <= 0) {
        this.sendSelection();
        return;
      }
      if (!this.selTimer) this.selTimer = setTimeout(() => {
        this.selTimer = 0;
        this.sendSelection();
      }, selectionDelay);
    }
    sendSelection() {
      const ranges = this.view.state.selection.ranges.map((r) => [this.index.unitToCp(r.anchor), this.index.unitToCp(r.head)]);
      doc.setSelection(ranges);
    }
    remote(ch) {
      this.dispatchRemote(changesFromOp(this.index, ch.op), ch.author);
    }
    dispatchRemote(changes, author) {
      this.view.dispatch({
        changes,
        annotations: [fromCollab.of(true), collabAuthor.of(author), Transaction.addToHistory.of(false), Transaction.remote.of(true)]
      });
    }
    scheduleDraw() {
      if (drawDelay <= 0) {
        this.drawPeers();
        return;
      }
      if (!this.drawTimer) this.drawTimer = setTimeout(() => {
        this.drawTimer = 0;
        this.drawPeers();
      }, drawDelay);
    }
    drawPeers() {
      const d = this.view.state.doc, decos = [];
      for (const p of doc.peers) {
        for (const [a, h] of p.ranges || []) {
          const ua = Math.min(this.index.cpToUnit(a), d.length), uh = Math.min(this.index.cpToUnit(h), d.length);
          if (ua !== uh) {
            decos.push(Decoration.mark({ class: `cm-collab-selection ${colorClass(this.view, p.color)}` }).range(Math.min(ua, uh), Math.max(ua, uh)));
          }
          const top = d.lineAt(uh).number === 1;
          decos.push(Decoration.widget({ widget: new CaretWidget(p.name || "Anonymous", p.color, top), side: -1 }).range(uh));
        }
      }
      this.view.dispatch({ effects: setPeers.of(Decoration.set(decos, true)) });
    }
    destroy() {
      clearTimeout(this.selTimer);
      clearTimeout(this.drawTimer);
      this.offChange();
      this.offPresence();
      if (bound.get(this.view) === this) bound.delete(this.view);
    }
  });
  return [peerField, theme, plugin];
}
export {
  collab,
  collabAuthor,
  collabIndex,
  fromCollab
};
