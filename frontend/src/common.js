// common.js: what the home, editor and viewer pages share: the list of
// documents this browser opened (localStorage), titles, error messages in
// words, downloads and the service worker that lets a page load offline.

const docsKey = "collabd-docs";
export const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const $ = (id) => document.getElementById(id);

// el builds an element: el("a", {href: "/", class: "x"}, "text", child).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
}

// titleOf is a document's title: its first line without its Markdown
// marks (a heading's #, a list's or a quote's marker, emphasis, code
// ticks, a link's URL), trimmed and shortened.
export function titleOf(head) {
  const line = plainLine(head.split("\n", 1)[0]);
  if (!line) return "Untitled";
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

// plainLine strips one line's Markdown marks.
export function plainLine(line) {
  return line
    .replace(/^\s{0,3}(?:#{1,6}(?=\s|$)|>+|[-*+](?=\s)|\d{1,9}[.)](?=\s))\s*/, "")
    .replace(/^\[[ xX]\]\s+/, "")
    .replace(/\s+#+\s*$/, "")
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/(\*\*|__|~~|`+)(.+?)\1/g, "$2")
    .replace(/(^|[^\w*])[*_]([^*_]+)[*_](?=$|[^\w*])/g, "$1$2")
    .trim();
}

export function listDocs() {
  try {
    const list = JSON.parse(localStorage.getItem(docsKey) || "[]");
    return Array.isArray(list) ? list.filter((d) => d && uuidRe.test(d.id)) : [];
  } catch { return []; }
}

// rememberDoc records that this browser opened a document (edit id), with
// whatever is known of it.
export function rememberDoc(doc) {
  const list = listDocs();
  const i = list.findIndex((d) => d.id === doc.id);
  const merged = { ...(i >= 0 ? list[i] : {}), ...doc };
  if (i >= 0) list.splice(i, 1);
  list.unshift(merged);
  try { localStorage.setItem(docsKey, JSON.stringify(list.slice(0, 200))); } catch { /* storage full: the list is a convenience */ }
}

export function forgetDoc(id) {
  try { localStorage.setItem(docsKey, JSON.stringify(listDocs().filter((d) => d.id !== id))); } catch { /* ignore */ }
}

// errorWords says what went wrong, for a person, from a protocol error code.
export function errorWords(code, fallback) {
  return {
    not_found: "No document has this link. It may have been deleted, or the link is incomplete.",
    bad_message: "The server did not understand this page. Reload it to get the current version.",
    bad_op: "The server refused an edit from this page, so it stopped sending. Reload to continue from the server's text.",
    too_large: "The document has reached the server's size limit: your last edit was not saved.",
    rate_limited: "Too many edits at once: the server asked this page to slow down.",
    shutting_down: "The server is restarting.",
  }[code] || fallback || `The server reported an error (${code}).`;
}

// fileName is a file name for title with extension ext: no characters
// that file systems refuse, no Markdown marks.
export function fileName(title, ext) {
  const base = plainLine(title || "").replace(/[\\/:*?"<>|\u0000-\u001f]+/g, "-").replace(/^[.\s-]+/, "").slice(0, 60).trim();
  return `${base || "document"}.${ext}`;
}

// download saves text as a file named after title (.txt unless ext says
// otherwise) through a link to a Blob.
export function download(text, title, ext = "txt", type = "text/plain") {
  const name = fileName(title, ext);
  const url = URL.createObjectURL(new Blob([text], { type: `${type};charset=utf-8` }));
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// copyButton wires a button that copies the value of an input.
export function copyButton(button, input) {
  const label = button.textContent;
  button.addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(input.value); button.textContent = "Copied"; }
    catch { input.focus(); input.select(); button.textContent = "Press Ctrl+C"; }
    setTimeout(() => { button.textContent = label; }, 1500);
  });
}

// ago says how long ago a time (ms since the epoch) was.
export function ago(t) {
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString();
}

// registerOffline installs the service worker that serves the pages from
// its cache when the server cannot be reached, so an editor with edits
// waiting in IndexedDB can be reloaded while offline.
export function registerOffline() {
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});
}

// shadowMount returns an element inside a shadow root of host for a
// CodeMirror view. CodeMirror injects its styles as a <style> element when
// it lives in the document, which a CSP of style-src 'self' blocks; in a
// shadow root it uses a constructed style sheet (adoptedStyleSheets),
// which the CSP allows. The page's CSS variables still reach inside.
export function shadowMount(host) {
  const root = host.attachShadow({ mode: "open" });
  const mount = document.createElement("div");
  mount.style.height = "100%";
  root.append(mount);
  return { root, mount };
}
