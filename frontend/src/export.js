// export.js: a document leaves the page as Markdown (.md), as a web page
// (.html: rendered, sanitized, its styles inlined, and a CSP of its own so
// that it runs no script wherever it is opened), as plain text (.txt), or
// printed (a print stylesheet shows only the rendered text: print to PDF
// from there). File names are the title without its Markdown marks.

import { $, download } from "./common.js";

// exportCSS is the web page's style sheet: the rendering's rules of
// app.css with the light theme's colors written out.
export const exportCSS = `
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f; background: #fff; line-height: 1.55; margin: 0; }
main { max-width: 46rem; margin: 2rem auto; padding: 0 1.25rem; }
h1, h2, h3 { line-height: 1.25; margin: 1.2em 0 .5em; }
h1 { font-size: 1.7em; border-bottom: 1px solid #d9dbe1; padding-bottom: .2em; }
h2 { font-size: 1.35em; border-bottom: 1px solid #d9dbe1; padding-bottom: .2em; }
a { color: #2f5fd0; }
img { max-width: 100%; }
p, li { overflow-wrap: anywhere; }
code { font-family: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .92em; background: #f5f6f8; padding: .1em .3em; border-radius: 4px; }
pre { background: #f5f6f8; padding: .8em 1em; border-radius: 6px; overflow: auto; border: 1px solid #d9dbe1; }
pre code { background: none; padding: 0; font-size: .9em; }
blockquote { margin: 0; padding: 0 1em; color: #5f6068; border-left: 4px solid #d9dbe1; }
table { border-collapse: collapse; margin: .8em 0; }
th, td { border: 1px solid #d9dbe1; padding: .35em .7em; }
th { background: #f5f6f8; }
.align-left { text-align: left; } .align-center { text-align: center; } .align-right { text-align: right; }
li.task-item { list-style: none; }
input.task { margin: 0 .35em 0 -1.3em; vertical-align: middle; }
hr { border: 0; border-top: 1px solid #d9dbe1; }
.tok-keyword { color: #8f1fa0; } .tok-string, .tok-string2 { color: #1c6b2a; } .tok-number, .tok-bool, .tok-atom { color: #a04a00; }
.tok-comment { color: #5f6068; font-style: italic; } .tok-typeName, .tok-className { color: #0f6a6a; }
.tok-variableName.tok-definition, .tok-propertyName.tok-definition { color: #1f55b0; }
@media print { main { margin: 0; max-width: none; } a { color: inherit; } pre { white-space: pre-wrap; } }
`;

const escapeHTML = (s) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

// standaloneHTML returns the web page of a rendering (already sanitized)
// with title.
export function standaloneHTML(title, body) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src https: data:">
<meta name="generator" content="collabd">
<title>${escapeHTML(title)}</title>
<style>${exportCSS}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

// rendered returns text rendered, sanitized, with its task boxes
// read-only, as a fragment.
async function rendered(text) {
  const m = await import("./markdown.js");
  await Promise.all(m.codeLanguagesIn(text).map((d) => d.load().catch(() => {})));
  const frag = m.sanitize(m.DOMPurify, m.render(m.renderer(), text));
  for (const box of frag.querySelectorAll("input.task")) box.setAttribute("disabled", "");
  return frag;
}

// wireExport makes button open the menu of exports of the text that
// text() returns, titled title(). printEl is where the print stylesheet
// expects the rendering.
export function wireExport(button, menu, text, title, printEl) {
  const close = () => { menu.hidden = true; button.setAttribute("aria-expanded", "false"); };
  button.addEventListener("click", () => {
    const open = menu.hidden;
    menu.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) menu.querySelector("button").focus();
  });
  menu.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { close(); button.focus(); }
    const items = [...menu.querySelectorAll("button")], i = items.indexOf(document.activeElement);
    if (e.key === "ArrowDown") { e.preventDefault(); items[(i + 1) % items.length].focus(); }
    if (e.key === "ArrowUp") { e.preventDefault(); items[(i - 1 + items.length) % items.length].focus(); }
  });
  document.addEventListener("click", (e) => { if (!menu.hidden && !menu.contains(e.target) && e.target !== button) close(); });
  menu.addEventListener("click", async (e) => {
    const kind = e.target.closest("[data-export]")?.dataset.export;
    if (!kind) return;
    close();
    const t = text();
    try {
      if (kind === "md") download(t, title(), "md", "text/markdown");
      else if (kind === "txt") download(t, title(), "txt", "text/plain");
      else if (kind === "html") {
        const div = document.createElement("div");
        div.append(await rendered(t));
        download(standaloneHTML(title(), div.innerHTML), title(), "html", "text/html");
      } else if (kind === "print") {
        printEl.replaceChildren(await rendered(t));
        window.print();
      }
    } catch (err) {
      $("banner").hidden = false;
      $("banner").textContent = `Could not export: ${err.message}`;
    }
  });
}
