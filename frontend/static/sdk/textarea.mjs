// sdk/textarea.js
import { diff, cpToUnit, unitToCp, transformIndex } from "./collabd.mjs";
function bindTextarea(doc, el, { presence = true } = {}) {
  let value = doc.text;
  el.value = value;
  const sendSelection = () => {
    if (!presence) return;
    const v = el.value;
    const a = unitToCp(v, el.selectionDirection === "backward" ? el.selectionEnd : el.selectionStart);
    const h = unitToCp(v, el.selectionDirection === "backward" ? el.selectionStart : el.selectionEnd);
    doc.setSelection([[a, h]]);
  };
  const onInput = () => {
    const next = el.value;
    if (next === value) return;
    const op = diff(value, next);
    value = next;
    doc.applyOp(op);
    sendSelection();
  };
  const offChange = doc.on("change", ({ op, local }) => {
    if (local) return;
    if (el.value !== value) onInput();
    const old = el.value;
    const focused = el.ownerDocument.activeElement === el;
    const s = unitToCp(old, el.selectionStart), e = unitToCp(old, el.selectionEnd), dir = el.selectionDirection;
    value = doc.text;
    el.value = value;
    if (focused) {
      el.setSelectionRange(cpToUnit(value, transformIndex(op, s)), cpToUnit(value, transformIndex(op, e)), dir);
    }
  });
  el.addEventListener("input", onInput);
  const doc_ = el.ownerDocument;
  const onSelect = () => {
    if (doc_.activeElement === el) sendSelection();
  };
  doc_.addEventListener("selectionchange", onSelect);
  return function unbind() {
    offChange();
    el.removeEventListener("input", onInput);
    doc_.removeEventListener("selectionchange", onSelect);
  };
}
export {
  bindTextarea
};
