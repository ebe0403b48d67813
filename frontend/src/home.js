// home.js: the home page. It creates documents (empty, from pasted text or
// from an uploaded file) and lists the ones this browser has opened.

import { $, el, listDocs, forgetDoc, rememberDoc, ago, download, registerOffline } from "./common.js";
import { Store } from "./store.js";

registerOffline();

const statusEl = $("create-status");

async function create(text) {
  statusEl.textContent = "Creating…";
  try {
    const resp = await fetch("/api/docs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(text ? { text } : {}),
    });
    let body = {};
    try { body = await resp.json(); } catch { /* not JSON */ }
    if (!resp.ok) throw new Error(body.error ? body.error.message : `the server answered ${resp.status}`);
    rememberDoc({ id: body.id, viewId: body.viewId, opened: Date.now() });
    // The ids travel in the fragment, which browsers never send to
    // servers or put in Referer headers.
    location.href = `/edit.html#${body.id}`;
  } catch (err) {
    statusEl.textContent = `Could not create the document: ${err.message === "Failed to fetch" ? "the server cannot be reached." : err.message}`;
  }
}

$("new-empty").addEventListener("click", () => create(""));
$("create").addEventListener("submit", (ev) => { ev.preventDefault(); create($("text").value); });
$("file").addEventListener("change", async (ev) => {
  const f = ev.target.files[0];
  if (!f) return;
  if (f.size > 8 << 20) { statusEl.textContent = "That file is over 8 MB: too big for one document."; return; }
  create(await f.text());
});

function render() {
  const docs = listDocs();
  const list = $("docs");
  $("docs-empty").hidden = docs.length > 0;
  list.replaceChildren(...docs.map((d) => el("li", {},
    el("a", { href: `/edit.html#${d.id}`, class: "doc-title" }, d.title || "Untitled"),
    el("span", { class: "muted" }, d.opened ? `opened ${ago(d.opened)}` : ""),
    el("span", { class: "doc-actions" },
      d.viewId ? el("a", { href: `/view.html#${d.viewId}`, class: "button small" }, "View") : null,
      el("button", { type: "button", class: "small", "aria-label": `Download ${d.title || "Untitled"} as .txt`, onclick: async () => {
        try {
          const r = await fetch(`/api/docs/${d.id}/text`, { cache: "no-store" });
          if (!r.ok) throw new Error(r.status === 404 ? "it no longer exists" : `the server answered ${r.status}`);
          download(await r.text(), d.title);
        } catch (err) { statusEl.textContent = `Could not download “${d.title || "Untitled"}”: ${err.message}`; }
      } }, "Download"),
      el("button", { type: "button", class: "small", "aria-label": `Remove ${d.title || "Untitled"} from this list`, onclick: () => {
        forgetDoc(d.id);
        render();
        // Its copy in this browser goes too, unless edits still wait in it.
        Store.open().then((s) => s && s.forgetDoc(d.id)).catch(() => {});
      } }, "Remove")))));
}
render();
window.addEventListener("storage", render);
