// The Monaco binding against a real collabd (run with sdk.test.mjs by
// TestSDKNode). Monaco itself needs a browser; the binding uses only a
// text model's offset and position calls, so a minimal model with
// Monaco's semantics stands in for it: UTF-16 offsets, 1-based lines and
// columns, and one content-change event per applyEdits whose changes
// carry offsets in the text before it.

import test from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { CollabDocument, CollabAPI, AstralIndex } from "collabd";
import { bindMonaco, cpToMonaco, monacoToCp } from "collabd/monaco";

const server = process.env.COLLABD_URL;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(cond, what) {
  const end = Date.now() + 10000;
  while (!cond()) { if (Date.now() > end) throw new Error(`timed out waiting for ${what}`); await sleep(10); }
}

class Model {
  constructor(text) { this.text = text; this.subs = new Set(); }
  getValue() { return this.text; }
  getValueLength() { return this.text.length; }
  setValue(t) { this.applyEdits([{ range: this.rangeOf(0, this.text.length), text: t }]); }
  getPositionAt(off) {
    off = Math.max(0, Math.min(off, this.text.length));
    const before = this.text.slice(0, off), nl = before.lastIndexOf("\n");
    return { lineNumber: before.split("\n").length, column: off - nl };
  }
  getOffsetAt({ lineNumber, column }) {
    let off = 0;
    for (let l = 1; l < lineNumber; l++) off = this.text.indexOf("\n", off) + 1;
    return off + column - 1;
  }
  rangeOf(a, b) {
    const p = this.getPositionAt(a), q = this.getPositionAt(b);
    return { startLineNumber: p.lineNumber, startColumn: p.column, endLineNumber: q.lineNumber, endColumn: q.column };
  }
  applyEdits(edits) {
    const changes = edits.map((e) => {
      const from = this.getOffsetAt({ lineNumber: e.range.startLineNumber, column: e.range.startColumn });
      const to = this.getOffsetAt({ lineNumber: e.range.endLineNumber, column: e.range.endColumn });
      return { rangeOffset: from, rangeLength: to - from, text: e.text };
    });
    let t = this.text;
    for (const c of [...changes].sort((x, y) => y.rangeOffset - x.rangeOffset)) t = t.slice(0, c.rangeOffset) + c.text + t.slice(c.rangeOffset + c.rangeLength);
    this.text = t;
    for (const fn of this.subs) fn({ changes: [...changes].reverse() }); // Monaco lists them in no set order
  }
  onDidChangeContent(fn) { this.subs.add(fn); return { dispose: () => this.subs.delete(fn) }; }
}

test("monaco: remote ops become model edits, model edits become ops, positions convert", async () => {
  const api = new CollabAPI({ server });
  const { id } = await api.create("line 😀 one\nline two");
  const a = await CollabDocument.open({ server, id, WebSocket });
  const b = await CollabDocument.open({ server, id, WebSocket });
  const model = new Model("");
  const unbind = bindMonaco(a, model);
  try {
    assert.equal(model.getValue(), "line 😀 one\nline two");
    // b edits after the emoji, by code point: the model gets it at the
    // right UTF-16 column.
    b.insert(7, "🎉");
    b.insert(b.length, "!");
    await until(() => model.getValue() === b.text, "the model to follow b");
    assert.equal(model.getValue(), "line 😀 🎉one\nline two!");
    // Two edits in one event, on both lines: one op.
    const pairs = new AstralIndex(model.getValue());
    model.applyEdits([
      { range: model.rangeOf(pairs.cpToUnit(5), pairs.cpToUnit(6)), text: "🙂" }, // replace 😀
      { range: model.rangeOf(model.getValue().length - 1, model.getValue().length), text: "?" },
    ]);
    assert.equal(a.text, "line 🙂 🎉one\nline two?");
    await a.synced();
    await until(() => b.text === a.text, "b to get the model's edit");
    // Conversions: code point 12 is line 2, column 1.
    const idx = new AstralIndex(model.getValue());
    assert.deepEqual(cpToMonaco(model, idx, 12), { lineNumber: 2, column: 1 });
    assert.equal(monacoToCp(model, idx, { lineNumber: 1, column: 8 }), 6); // after 🙂 (two units)
  } finally { unbind(); a.close(); b.close(); }
});
