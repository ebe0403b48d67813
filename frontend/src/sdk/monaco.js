// monaco.js: binds a CollabDocument to a Monaco editor model. Monaco
// counts UTF-16 offsets (model.getOffsetAt / getPositionAt); the protocol
// counts code points: the conversions are here, through an AstralIndex
// kept in step with the model. Local content changes become ops; remote
// ops are applied with pushEditOperations outside the undo stack's
// grouping, and other editors' carets are shown as decorations.
// monaco-editor is not imported: pass the model (and, for carets, the
// editor).
//
//   const unbind = bindMonaco(doc, editor.getModel(), editor);

import { AstralIndex, opFromChanges, changesFromOp } from "./collabd.js";

// Position conversion, exported for applications that map their own
// markers: a code point offset to a Monaco {lineNumber, column} and back.
export function cpToMonaco(model, index, cp) { return model.getPositionAt(index.cpToUnit(cp)); }
export function monacoToCp(model, index, pos) { return index.unitToCp(model.getOffsetAt(pos)); }

export function bindMonaco(doc, model, editor = null, { presence = true } = {}) {
  let applying = false;
  if (model.getValue() !== doc.text) model.setValue(doc.text);
  const index = new AstralIndex(model.getValue());
  let decorations = [];

  const sub = model.onDidChangeContent((e) => {
    // Monaco lists a change's edits with offsets in the text before it,
    // in no particular order: sort them for the op.
    const old = [...e.changes].sort((a, b) => a.rangeOffset - b.rangeOffset);
    const changes = [];
    let shift = 0;
    for (const c of old) {
      const fromA = c.rangeOffset, toA = c.rangeOffset + c.rangeLength;
      changes.push({ fromA, toA, fromB: fromA + shift, toB: fromA + shift + c.text.length });
      shift += c.text.length - c.rangeLength;
    }
    const oldLength = model.getValueLength() - shift;
    const op = applying ? null : opFromChanges(index, changes, (k) => old[k].text, oldLength);
    const text = model.getValue();
    index.map(changes, (a, b) => text.slice(a, b), text.length);
    if (op) doc.applyOp(op);
  });

  const offChange = doc.on("change", ({ op, local }) => {
    if (local) return;
    const edits = changesFromOp(index, op).map((c) => {
      const a = model.getPositionAt(c.from), b = model.getPositionAt(c.to);
      return { range: { startLineNumber: a.lineNumber, startColumn: a.column, endLineNumber: b.lineNumber, endColumn: b.column }, text: c.insert, forceMoveMarkers: true };
    });
    applying = true;
    try { model.applyEdits(edits); } finally { applying = false; }
  });

  const offPresence = presence && editor ? doc.on("presence", (peers) => {
    const list = [];
    for (const p of peers) for (const [a, h] of p.ranges || []) {
      const pa = cpToMonaco(model, index, a), ph = cpToMonaco(model, index, h);
      list.push({
        range: { startLineNumber: pa.lineNumber, startColumn: pa.column, endLineNumber: ph.lineNumber, endColumn: ph.column },
        options: { className: "collab-selection", afterContentClassName: "collab-caret", hoverMessage: { value: p.name || "Anonymous" } },
      });
    }
    decorations = editor.deltaDecorations(decorations, list);
  }) : () => {};

  const selSub = presence && editor ? editor.onDidChangeCursorSelection((e) => {
    const s = [e.selection, ...(e.secondarySelections || [])];
    doc.setSelection(s.map((r) => [
      monacoToCp(model, index, { lineNumber: r.selectionStartLineNumber, column: r.selectionStartColumn }),
      monacoToCp(model, index, { lineNumber: r.positionLineNumber, column: r.positionColumn }),
    ]));
  }) : { dispose() {} };

  return function unbind() {
    sub.dispose(); selSub.dispose(); offChange(); offPresence();
    if (editor) editor.deltaDecorations(decorations, []);
  };
}
