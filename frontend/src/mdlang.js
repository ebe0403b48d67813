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

