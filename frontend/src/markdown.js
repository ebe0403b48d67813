// markdown.js: Markdown rendered for the previews (markdown-it, then
// DOMPurify in the page), loaded by the pages only when a preview is
// shown. Rendering is pure and runs in Node's tests; sanitizing needs a
// DOM and is done by the pages (sanitize).
//
// What a document may do in a preview: headings, lists, task lists (a
// box ticked in the preview edits the text: the checkbox names its
// source line), tables, fenced code highlighted with CodeMirror's own
// parsers, links and images by URL. Raw HTML in a document is shown as
// text (markdown-it's html: false), javascript: and similar links are
// refused (markdown-it's validateLink), and the result still passes
// DOMPurify; the pages' CSP runs no inline script either way.

import MarkdownIt from "markdown-it";
import { LanguageDescription } from "@codemirror/language";
import { highlightCode, classHighlighter } from "@lezer/highlight";
import { codeLanguages } from "./mdlang.js";

const escapeHTML = (s) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

// highlightHTML returns code as HTML with tok-* classes (classHighlighter)
// when lang names one of codeLanguages that is loaded; "" otherwise
// (markdown-it then escapes the code itself). A language not yet loaded
// starts loading, and loaded() is called once it is.
export function highlightHTML(code, lang, loaded = () => {}) {
  const desc = lang && LanguageDescription.matchLanguageName(codeLanguages, lang.trim().split(/\s+/)[0], true);
  if (!desc) return "";
  if (!desc.support) { desc.load().then(loaded, () => {}); return ""; }
  const tree = desc.support.language.parser.parse(code);
  let out = "";
  highlightCode(code, tree, classHighlighter,
    (text, classes) => { out += classes ? `<span class="${classes}">${escapeHTML(text)}</span>` : escapeHTML(text); },
    () => { out += "\n"; });
  return out;
}

// alignClasses turns a table column's alignment, which markdown-it gives
// as a style attribute (refused by the pages' CSP), into a class.
function alignClasses(md) {
  md.core.ruler.push("align_classes", (state) => {
    for (const tok of state.tokens) {
      const style = tok.attrGet && tok.attrGet("style");
      const m = style && /text-align:\s*(left|center|right)/.exec(style);
      if (!style) continue;
      tok.attrs = tok.attrs.filter(([k]) => k !== "style");
      if (m) tok.attrJoin("class", `align-${m[1]}`);
    }
  });
}

// sourceLines marks every block with the line it starts on (data-line,
// from 0), for the scroll in step and for task boxes.
function sourceLines(md) {
  md.core.ruler.push("source_lines", (state) => {
    for (const tok of state.tokens) {
      if (tok.map && tok.nesting === 1) tok.attrSet("data-line", String(tok.map[0] + (state.env.lineOffset || 0)));
    }
  });
}

// taskLists turns "[ ] " and "[x] " at the start of a list item into a
// checkbox that names its line.
function taskLists(md) {
  md.core.ruler.after("inline", "task_lists", (state) => {
    const toks = state.tokens;
    for (let i = 2; i < toks.length; i++) {
      const tok = toks[i];
      if (tok.type !== "inline" || toks[i - 1].type !== "paragraph_open" || toks[i - 2].type !== "list_item_open") continue;
      const first = tok.children && tok.children[0];
      const m = first && first.type === "text" && /^\[([ xX])\]\s/.exec(first.content);
      if (!m) continue;
      first.content = first.content.slice(m[0].length);
      const box = new state.Token("html_inline", "", 0);
      const line = toks[i - 2].map ? toks[i - 2].map[0] + (state.env.lineOffset || 0) : -1;
      box.content = `<input type="checkbox" class="task" data-line="${line}"${m[1] === " " ? "" : " checked"} aria-label="Done"> `;
      tok.children.unshift(box);
      toks[i - 2].attrJoin("class", "task-item");
    }
  });
}

// renderer returns the document renderer: markdown-it without raw HTML.
// loaded is called when a code language the text named has loaded, so
// that the caller renders again with its highlighting.
export function renderer(loaded) {
  const md = new MarkdownIt({
    html: false, linkify: true, breaks: true,
    highlight: (code, lang) => {
      const h = highlightHTML(code, lang, loaded);
      return h ? `<pre class="code"><code class="language-${escapeHTML(lang)}">${h}</code></pre>` : "";
    },
  });
  md.use(sourceLines).use(taskLists).use(alignClasses);
  return md;
}

// render returns text as HTML, not yet sanitized; line is the line (from
// 0) text starts on in the document, for data-line.
export function render(md, text, line = 0) {
  return md.render(text, { lineOffset: line });
}

// Incremental rendering. A long document is rendered in chunks, pieces
// of its text whose renderings, joined, are the whole text's: a change
// re-renders only the chunks whose text it changed (Preview.update), and
// a chunk out of sight costs no layout or paint (content-visibility in
// app.css). A chunk ends only at a blank line outside fenced code that is
// followed by a line at column 0 that starts a block of its own: not
// indented (which could continue a list item or indented code) and not a
// list marker (which could continue a loose list). Link reference
// definitions apply across the whole text, so a text that has any is
// one chunk.

// chunkLines is how many lines a chunk grows to before it may end.
const chunkLines = 60;
const fenceRe = /^ {0,3}(`{3,}|~{3,})/;
const listRe = /^(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)/;
// A definition may also sit in a quote or a list item: any line that
// has one after such marks counts.
const refDefRe = /^[ \t>*+\-\d.)]*\[[^\]\n]+\]:/m;

// splitChunks returns text's chunks as {text, line}: consecutive
// substrings whose concatenation is text, and the line each starts on.
export function splitChunks(text, maxLines = chunkLines) {
  if (refDefRe.test(text)) return [{ text, line: 0 }];
  return scanChunks(text, 0, 0, maxLines, []).chunks;
}

const lineCount = (s) => { let n = 0; for (let i = s.indexOf("\n"); i >= 0; i = s.indexOf("\n", i + 1)) n++; return n; };

// cutAt reports whether a chunk may start at line l of a text, after a
// blank line outside fenced code: at column 0 and not a list marker.
const cutAt = (l) => /^\S/.test(l) && !listRe.test(l);

// scanChunks cuts text from offset pos, the start of line line and of a
// chunk (outside fenced code), into chunks, each growing to maxLines
// lines before it may end. It ends early at the first offset of stops
// (ascending) where a chunk may start, whatever its size, and returns
// that offset as stop (-1 when it reached the end of the text).
function scanChunks(text, pos, line, maxLines, stops) {
  const out = [];
  let start = pos, startLine = line, fence = null, prevBlank = false, si = 0;
  if (stops.length && stops[0] === pos) return { chunks: out, stop: pos };
  while (pos < text.length) {
    let end = text.indexOf("\n", pos);
    if (end < 0) end = text.length;
    const l = text.slice(pos, end);
    const blank = !/\S/.test(l);
    while (si < stops.length && stops[si] < pos) si++;
    if (fence) {
      const m = fenceRe.exec(l);
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length && !/\S/.test(l.slice(m[0].length))) fence = null;
    } else {
      if (prevBlank && !blank && cutAt(l)) {
        const stop = si < stops.length && stops[si] === pos;
        if (stop || line - startLine >= maxLines) {
          out.push({ text: text.slice(start, pos), line: startLine });
          if (stop) return { chunks: out, stop: pos };
          start = pos;
          startLine = line;
        }
      }
      const m = fenceRe.exec(l);
      if (m && !(m[1][0] === "`" && l.slice(m[0].length).includes("`"))) fence = m[1];
    }
    prevBlank = blank;
    pos = end + 1;
    line++;
  }
  if (start < text.length || (out.length === 0 && start === 0)) out.push({ text: text.slice(start), line: startLine });
  return { chunks: out, stop: -1 };
}

// rechunk returns the chunks of text, which old's chunks were of before
// an edit: the chunks before and after what the edit changed are kept as
// they were (keep of them at the start, and old's from index from on at
// the end), and only the text between is cut anew, ending at the first
// old boundary where a chunk may still start. So an edit re-renders the
// chunk it falls in, not every chunk after it that a new cut would move.
export function rechunk(old, text, maxLines = chunkLines) {
  if (!old.length || refDefRe.test(text) || old.length === 1 && refDefRe.test(old[0].text)) {
    return { chunks: splitChunks(text, maxLines), keep: 0, from: old.length };
  }
  let keep = 0, off = 0, line = 0;
  while (keep < old.length && text.startsWith(old[keep].text, off)) { off += old[keep].text.length; line += lineCount(old[keep].text); keep++; }
  if (keep === old.length && off === text.length) return { chunks: old.map((c) => ({ text: c.text, line: c.line })), keep, from: old.length };
  // The text's old end is no place to cut if text goes on after it.
  if (keep === old.length) {
    keep--;
    off -= old[keep].text.length;
    line -= lineCount(old[keep].text);
  }
  // The first changed chunk must still be one that may start here.
  while (keep > 0) {
    const nl = text.indexOf("\n", off);
    if (off < text.length && cutAt(text.slice(off, nl < 0 ? text.length : nl))) break;
    keep--;
    off -= old[keep].text.length;
    line -= lineCount(old[keep].text);
  }
  let from = old.length, end = text.length;
  while (from > keep && end - old[from - 1].text.length >= off && text.startsWith(old[from - 1].text, end - old[from - 1].text.length)) {
    from--;
    end -= old[from].text.length;
  }
  const stops = [];
  for (let i = from, o = end; i < old.length; o += old[i].text.length, i++) stops.push(o);
  const { chunks: mid, stop } = scanChunks(text, off, line, maxLines, stops);
  const kept = stop < 0 ? old.length : from + stops.indexOf(stop);
  let l = line + mid.reduce((n, c) => n + lineCount(c.text), 0);
  const tail = old.slice(kept).map((c) => { const t = { text: c.text, line: l }; l += lineCount(c.text); return t; });
  return { chunks: [...old.slice(0, keep).map((c) => ({ text: c.text, line: c.line })), ...mid, ...tail], keep, from: kept };
}

// Preview keeps el's rendering of a text in step with it, chunk by chunk:
// el's children are one div.md-chunk per chunk. update renders only the
// chunks whose text is new, in one pass through DOMPurify, keeps the
// others' elements (moving their data-line numbers when lines before
// them came or went), and touches el only where chunks changed.
export class Preview {
  constructor(el, md, purify) {
    this.el = el;
    this.md = md;
    this.purify = purify;
    this.chunks = []; // {text, line, node}, in el's order
  }

  update(text) {
    const old = this.chunks;
    const { chunks: next, keep, from } = rechunk(old, text);
    const tailLen = old.length - from;
    const pool = new Map();
    for (const c of old.slice(keep, from)) {
      if (!pool.has(c.text)) pool.set(c.text, []);
      pool.get(c.text).push(c);
    }
    const mid = [], fresh = [];
    for (const n of next.slice(keep, next.length - tailLen)) {
      const reused = pool.get(n.text)?.shift();
      if (reused) mid.push(shifted(reused, n.line));
      else { const c = { text: n.text, line: n.line, node: null }; mid.push(c); fresh.push(c); }
    }
    if (fresh.length) {
      const html = fresh.map((c) => `<div class="md-chunk">${render(this.md, c.text, c.line)}</div>`).join("");
      const nodes = [...sanitize(this.purify, html).children];
      if (nodes.length !== fresh.length) {
        // Never expected (markdown-it's output is balanced): show the
        // whole rendering rather than chunks out of place.
        this.clear();
        this.el.replaceChildren(sanitize(this.purify, render(this.md, text)));
        return;
      }
      fresh.forEach((c, i) => { c.node = nodes[i]; });
    }
    for (const list of pool.values()) for (const c of list) c.node.remove();
    const suffix = old.slice(from).map((c, i) => shifted(c, next[next.length - tailLen + i].line));
    const anchor = suffix.length ? suffix[0].node : null;
    for (const c of mid) this.el.insertBefore(c.node, anchor);
    this.chunks = [...old.slice(0, keep), ...mid, ...suffix];
  }

  // clear forgets the rendering: the next update renders every chunk
  // (a code language has loaded, say, and highlights what it did not).
  clear() {
    this.chunks = [];
    this.el.replaceChildren();
  }

  // chunkAt returns the element of the chunk that holds line (from 0).
  chunkAt(line) {
    const cs = this.chunks;
    let lo = 0, hi = cs.length - 1;
    while (lo < hi) {
      const m = (lo + hi + 1) >> 1;
      if (cs[m].line <= line) lo = m; else hi = m - 1;
    }
    return cs.length ? cs[lo].node : null;
  }
}

// shifted moves chunk c's data-line numbers to its new first line.
function shifted(c, line) {
  if (c.line !== line) {
    const d = line - c.line;
    for (const e of c.node.querySelectorAll("[data-line]")) e.setAttribute("data-line", String(Number(e.getAttribute("data-line")) + d));
    c.line = line;
  }
  return c;
}

// toggleTask returns the change that ticks or unticks the task box on
// line (from 0) of text, as {from, to, insert} in UTF-16 units, or null.
export function toggleTask(text, line) {
  let start = 0;
  for (let i = 0; i < line; i++) {
    start = text.indexOf("\n", start);
    if (start < 0) return null;
    start++;
  }
  let end = text.indexOf("\n", start);
  if (end < 0) end = text.length;
  const m = /^(\s*(?:[-*+]|\d+[.)])\s+)\[([ xX])\]/.exec(text.slice(start, end));
  if (!m) return null;
  const at = start + m[1].length + 1;
  return { from: at, to: at + 1, insert: m[2] === " " ? "x" : " " };
}

// codeLanguagesIn returns the languages that text's fenced code blocks
// name, to be loaded before a rendering that must be complete at once
// (an export).
export function codeLanguagesIn(text) {
  const out = new Set();
  for (const m of text.matchAll(/^ {0,3}(?:```|~~~)\s*([^\s`]+)/gm)) {
    const d = LanguageDescription.matchLanguageName(codeLanguages, m[1], true);
    if (d) out.add(d);
  }
  return [...out];
}

// sanitize passes html through DOMPurify (given by the page, which has a
// DOM) and returns a fragment: links open in a new tab without a referrer
// or opener, and nothing that can run script survives.
export { default as DOMPurify } from "dompurify";

export function sanitize(purify, html) {
  if (!purify.__collabd) {
    purify.__collabd = true;
    purify.addHook("afterSanitizeAttributes", (node) => {
      if (node.tagName === "A" && node.getAttribute("href")) {
        node.setAttribute("target", "_blank");
        node.setAttribute("rel", "noopener noreferrer nofollow");
      }
      if (node.tagName === "INPUT" && node.getAttribute("type") !== "checkbox") node.remove();
      if (node.tagName === "IMG") node.setAttribute("referrerpolicy", "no-referrer");
    });
  }
  return purify.sanitize(html, {
    RETURN_DOM_FRAGMENT: true,
    FORBID_TAGS: ["style", "form", "button", "textarea", "select", "iframe", "object", "embed"],
    // Inline styles (a table column's alignment) would break the CSP.
    FORBID_ATTR: ["style"],
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#|\/(?!\/)|[^:/?#]*(?:[/?#]|$))/i,
  });
}
