// sdk/codemirror.js
import { Annotation, StateEffect, StateField, Transaction } from "@codemirror/state";
import { Decoration, EditorView, ViewPlugin, WidgetType } from "@codemirror/view";
import { AstralIndex, opFromChanges, changesFromOp } from "./collabd.mjs";
var fromCollab = Annotation.define();
var CaretWidget = class extends WidgetType {
  constructor(name, color) {
    super();
    this.name = name;
    this.color = color;
  }
  eq(o) {
    return o.name === this.name && o.color === this.color;
  }
  toDOM() {
    const caret = document.createElement("span");
    caret.className = "cm-collab-caret";
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
    opacity: ".9"
  }
});
function collab(doc, { presence = true } = {}) {
  const plugin = ViewPlugin.fromClass(class {
    constructor(view) {
      this.view = view;
      this.index = new AstralIndex(view.state.doc.toString());
      this.offChange = doc.on("change", (ch) => {
        if (!ch.local) this.remote(ch.op);
      });
      this.offPresence = presence ? doc.on("presence", (peers) => this.drawPeers(peers)) : () => {
      };
      if (view.state.doc.toString() !== doc.text) {
        queueMicrotask(() => this.dispatchRemote([{ from: 0, to: this.view.state.doc.length, insert: doc.text }]));
      }
      if (presence) queueMicrotask(() => this.drawPeers(doc.peers));
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
      if (presence && u.transactions.some((tr) => !tr.annotation(fromCollab) && (tr.docChanged || tr.selection))) {
        const ranges = u.state.selection.ranges.map((r) => [this.index.unitToCp(r.anchor), this.index.unitToCp(r.head)]);
        doc.setSelection(ranges);
      }
    }
    remote(op) {
      this.dispatchRemote(changesFromOp(this.index, op));
    }
    dispatchRemote(changes) {
      this.view.dispatch({
        changes,
        annotations: [fromCollab.of(true), Transaction.addToHistory.of(false), Transaction.remote.of(true)]
      });
    }
    drawPeers(peers) {
      const d = this.view.state.doc, decos = [];
      for (const p of peers) {
        for (const [a, h] of p.ranges || []) {
          const ua = Math.min(this.index.cpToUnit(a), d.length), uh = Math.min(this.index.cpToUnit(h), d.length);
          if (ua !== uh) {
            decos.push(Decoration.mark({ class: "cm-collab-selection", attributes: { style: `background-color: ${p.color}40` } }).range(Math.min(ua, uh), Math.max(ua, uh)));
          }
          decos.push(Decoration.widget({ widget: new CaretWidget(p.name || "Anonymous", p.color), side: -1 }).range(uh));
        }
      }
      this.view.dispatch({ effects: setPeers.of(Decoration.set(decos, true)) });
    }
    destroy() {
      this.offChange();
      this.offPresence();
    }
  });
  return [peerField, theme, plugin];
}
export {
  collab,
  fromCollab
};
