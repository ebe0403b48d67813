// authors.js: who wrote what (GET /api/docs/{id}/authors), shown as a
// background color per author. Pure functions, tested in Node: the color
// of an author comes from its id alone, so it stays the same across
// reloads, restarts and pages; runs of code points become ranges of the
// editor's UTF-16 units through an AstralIndex.

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
