// mdlang.js: the editor's Markdown (the Lezer Markdown parser with GFM:
// tables, task lists, strikethrough) with the languages of fenced code
// blocks, each loaded (its own bundle chunk) only when a document first
// names it. Shared with markdown.js, whose previews highlight code with
// the same parsers. Built on @lezer/markdown directly rather than
// @codemirror/lang-markdown, which brings HTML, CSS and JavaScript
// support into every page load.

import { parser, GFM, parseCode } from "@lezer/markdown";
import {
  Language, LanguageSupport, LanguageDescription, ParseContext, defineLanguageFacet, languageDataProp,
  HighlightStyle, syntaxHighlighting,
} from "@codemirror/language";
import { tags as t } from "@lezer/highlight";
import { Compartment, EditorState } from "@codemirror/state";
import { EditorView } from "@codemirror/view";

// codeLanguages are the languages of fenced code blocks, in the editor
// and the previews alike.
export const codeLanguages = [
  LanguageDescription.of({ name: "JavaScript", alias: ["js", "javascript", "mjs", "jsx"], load: () => import("@codemirror/lang-javascript").then((m) => m.javascript({ jsx: true })) }),
  LanguageDescription.of({ name: "TypeScript", alias: ["ts", "typescript", "tsx"], load: () => import("@codemirror/lang-javascript").then((m) => m.javascript({ typescript: true, jsx: true })) }),
  LanguageDescription.of({ name: "Python", alias: ["py", "python"], load: () => import("@codemirror/lang-python").then((m) => m.python()) }),
  LanguageDescription.of({ name: "JSON", alias: ["json"], load: () => import("@codemirror/lang-json").then((m) => m.json()) }),
  LanguageDescription.of({ name: "CSS", alias: ["css"], load: () => import("@codemirror/lang-css").then((m) => m.css()) }),
  LanguageDescription.of({ name: "Go", alias: ["go", "golang"], load: () => import("@codemirror/lang-go").then((m) => m.go()) }),
];

// highlightStyle colors Markdown and code with the page's variables, so
// that light and dark themes both read well.
const highlightStyle = HighlightStyle.define([
  { tag: t.heading1, fontWeight: "700", fontSize: "1.3em" },
  { tag: t.heading2, fontWeight: "700", fontSize: "1.15em" },
  { tag: [t.heading3, t.heading4, t.heading5, t.heading6], fontWeight: "700" },
  { tag: t.strong, fontWeight: "700" },
  { tag: t.emphasis, fontStyle: "italic" },
  { tag: t.strikethrough, textDecoration: "line-through" },
  { tag: [t.link, t.url], color: "var(--hl-link)" },
  { tag: [t.processingInstruction, t.meta, t.contentSeparator], color: "var(--muted)" },
  { tag: t.monospace, fontFamily: "var(--mono)", color: "var(--hl-code)" },
  { tag: t.quote, color: "var(--muted)", fontStyle: "italic" },
  { tag: [t.keyword, t.controlKeyword, t.definitionKeyword, t.moduleKeyword], color: "var(--hl-keyword)" },
  { tag: [t.string, t.special(t.string), t.regexp], color: "var(--hl-string)" },
  { tag: [t.number, t.bool, t.null, t.atom], color: "var(--hl-number)" },
  { tag: [t.comment, t.lineComment, t.blockComment], color: "var(--muted)", fontStyle: "italic" },
  { tag: [t.function(t.variableName), t.function(t.propertyName)], color: "var(--hl-func)" },
  { tag: [t.typeName, t.className], color: "var(--hl-type)" },
]);

// codeParser returns the parser of a fenced block's language: one not
// yet loaded is skipped until it is, then parsed again.
function codeParser(info) {
  const found = info && LanguageDescription.matchLanguageName(codeLanguages, /\S*/.exec(info)[0], true);
  if (!found) return null;
  return found.support ? found.support.language.parser : ParseContext.getSkippingParser(found.load());
}

const data = defineLanguageFacet({ commentTokens: { block: { open: "<!--", close: "-->" } } });
const markdownLang = new Language(data, parser.configure([GFM, parseCode({ codeParser }),
  { props: [languageDataProp.add({ Document: data })] }]), [], "markdown");

// markdownSupport is the editor's extension: Markdown with fenced code in
// codeLanguages, highlighted with highlightStyle.
export function markdownSupport() {
  return [new LanguageSupport(markdownLang), syntaxHighlighting(highlightStyle)];
}


// markdownMaxChars is the longest text (UTF-16 units) highlighted as
// Markdown. Lezer's Markdown parser parses a paragraph again whole at each
// edit inside it: in a text of a million characters without blank lines
// (one paragraph), a keystroke cost 120 ms instead of 3. Past this length
// the editor shows plain text, and also when edits keep taking longer than
// slowEditMs (a long paragraph in a shorter text: 17 ms a keystroke in one
// of 100,000 characters); Markdown comes back below 3/4 of the length at
// which it went.
export const markdownMaxChars = 200_000;
const slowEditMs = 12;

// sizedMarkdown is markdownSupport, turned off while the text is too long
// for it (above).
export function sizedMarkdown() {
  const slot = new Compartment();
  let on = true, queued = false, limit = markdownMaxChars, t0 = 0, slow = 0;
  // The parse runs while the transaction's state is made, between this
  // filter and the update listener.
  const start = EditorState.transactionFilter.of((tr) => { if (tr.docChanged) t0 = performance.now(); return tr; });
  const check = EditorView.updateListener.of((u) => {
    if (!u.docChanged || queued) return;
    const len = u.state.doc.length;
    if (t0 && on) {
      slow = performance.now() - t0 > slowEditMs ? slow + 1 : Math.max(0, slow - 1);
      if (slow >= 3 && len > 20_000) limit = Math.min(limit, len - 1);
    }
    t0 = 0;
    const want = on ? len <= limit : len <= limit * 0.75;
    if (want === on) return;
    on = want;
    slow = 0;
    if (on) limit = markdownMaxChars;
    queued = true;
    // Not inside this update: reconfigure in a task of its own.
    setTimeout(() => { queued = false; u.view.dispatch({ effects: slot.reconfigure(on ? markdownSupport() : []) }); });
  });
  return [slot.of(markdownSupport()), start, check];
}
