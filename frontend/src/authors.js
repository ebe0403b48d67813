// authors.js: who wrote what (GET /api/docs/{id}/authors), shown as a
// background color per author. Pure functions, tested in Node: the color
// of an author comes from its id alone, so it stays the same across
// reloads, restarts and pages; runs of code points become ranges of the
// editor's UTF-16 units through an AstralIndex.

import { Decoration } from "@codemirror/view";

// authorHue returns a hue in [0, 360) derived from an author id (FNV-1a).
export function authorHue(author) {
  let h = 0x811c9dc5;
  for (let i = 0; i < author.length; i++) {
    h ^= author.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % 360;
}

// authorColors returns the tint behind an author's text and the solid
// color of its swatch in the legend. The tint is light enough that text
// on it keeps its contrast, in light and dark themes alike.
export function authorColors(author) {
  if (!author) return { tint: "transparent", swatch: "transparent" };
  const hue = authorHue(author);
  return { tint: `hsla(${hue}, 80%, 55%, 0.22)`, swatch: `hsl(${hue}, 65%, 42%)` };
}

// authorClass returns the CSS class of an author's text: author ids are
// base64url, valid in a class name after the prefix.
export function authorClass(author) {
  return `cm-au-${author.replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

// runRanges turns runs ({author, len} in code points) into
// [fromUnit, toUnit, author] for the authors that are known, clipped to
// the document's length (the runs may be of a revision a little older
// than the text shown).
export function runRanges(runs, index, docLength) {
  const out = [];
  let cp = 0;
  for (const r of runs) {
    const from = cp;
    cp += r.len;
    if (!r.author) continue;
    const a = Math.min(index.cpToUnit(from), docLength);
    const b = Math.min(index.cpToUnit(cp), docLength);
    if (a < b) out.push([a, b, r.author]);
  }
  return out;
}

// legend lists the authors of the runs, most text first, each with a
// name: from the answer's names, else from names the page knows (nameOf),
// else a short form of the id; "" (unknown) last if present.
export function legend(runs, names, nameOf) {
  const total = new Map();
  for (const r of runs) total.set(r.author, (total.get(r.author) || 0) + r.len);
  return [...total.entries()]
    .sort((x, y) => (x[0] === "") - (y[0] === "") || y[1] - x[1])
    .map(([author, len]) => ({
      author, len,
      name: author ? (names?.[author] || nameOf(author) || `someone (${author.slice(0, 6)})`) : "unknown (initial text or before names)",
    }));
}

// authorStyler returns a function that gives an author's class, adding
// its rule once to a style sheet adopted by root (a constructed sheet, so
// the strict CSP holds).
export function authorStyler(root) {
  const sheet = new CSSStyleSheet();
  root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
  const done = new Set();
  return (author) => {
    const c = authorClass(author);
    if (!done.has(c)) { done.add(c); sheet.insertRule(`.${c} { background-color: ${authorColors(author).tint}; }`); }
    return c;
  };
}

// renderLegend fills ul with the legend's entries: a swatch and a name.
export function renderLegend(ul, entries) {
  ul.replaceChildren(...entries.map((e) => {
    const li = document.createElement("li");
    li.dataset.author = e.author;
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.backgroundColor = e.author ? authorColors(e.author).swatch : "transparent";
    if (!e.author) sw.style.border = "1px dashed var(--muted)";
    const name = document.createElement("span");
    name.textContent = e.name;
    li.append(sw, name);
    return li;
  }));
}

// authorMarker returns markOf(author): the one mark decoration of an
// author's text (classOf gives its class), the same object every time,
// so that marks of one author can be told apart by identity and joined.
export function authorMarker(classOf) {
  const marks = new Map();
  return (author) => {
    let m = marks.get(author);
    if (!m) { m = Decoration.mark({ class: classOf(author) }); marks.set(author, m); }
    return m;
  };
}

// markChanges returns deco, the author marks already mapped through
// changes, with the text that changes inserted marked as author's (no
// author: left as mapping made it) and kept as one mark per run: an
// insertion joins the marks of its author it touches and cuts another
// author's mark it falls inside, and a deletion joins the marks of one
// author it brings together. So a keystroke changes one mark's end, not
// the number of marks: the editor redraws no more of the line than the
// character, and the set stays as small as the runs GET /authors gives.
export function markChanges(deco, changes, author, markOf) {
  const mark = author ? markOf(author) : null;
  changes.iterChangedRanges((fa, ta, from, to) => {
    const drop = [], add = [];
    if (from < to && mark) {
      let a = from, b = to;
      deco.between(from, to, (f, t, v) => {
        if (v === mark) {
          drop.push([f, t, v]);
          a = Math.min(a, f); b = Math.max(b, t);
        } else if (f < to && t > from) {
          drop.push([f, t, v]);
          if (f < from) add.push(v.range(f, from));
          if (t > to) add.push(v.range(to, t));
        }
      });
      add.push(mark.range(a, b));
    } else if (from === to) {
      // What a deletion brings together: a mark ending here and one of
      // the same author starting here.
      const ending = [], starting = [];
      deco.between(from, from, (f, t, v) => { if (t === from && f < t) ending.push([f, t, v]); else if (f === from && t > f) starting.push([f, t, v]); });
      for (const e of ending) {
        const s = starting.find((x) => x[2] === e[2]);
        if (s) { drop.push(e, s); add.push(e[2].range(e[0], s[1])); }
      }
    }
    if (!drop.length && !add.length) return;
    const lo = Math.min(from, ...drop.map((d) => d[0])), hi = Math.max(to, ...drop.map((d) => d[1]));
    deco = deco.update({
      filterFrom: lo, filterTo: hi,
      filter: (f, t, v) => !drop.some((d) => d[0] === f && d[1] === t && d[2] === v),
      add, sort: true,
    });
  });
  return deco;
}
