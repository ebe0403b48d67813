// home.js: the home page. It creates documents (empty, from pasted text or
// from an uploaded file), lists the ones this browser has opened and,
// signed in, the team's (workspace.js).

import { $, el, listDocs, forgetDoc, rememberDoc, ago, download, registerOffline } from "./common.js";
import { Store } from "./store.js";
import { me, accountBar, signInURL } from "./account.js";
import { workspace } from "./workspace.js";

registerOffline();
// Signed in, the home page lists the team's documents (workspace.js).
const whoAmI = me().then((who) => { accountBar(who); workspace(who); return who; });

const statusEl = $("create-status");

// The creation token (collabd -create-token, or a create JWT), which the
// server asks for by answering 401. It is asked for once and remembered.
const tokenKey = "collabd-create-token";
const tokenForm = $("token-form");
let pendingText = null; // the text of a create waiting for the token
let pageToken = ""; // where storage is refused, the token lasts this page

function storedToken() {
  try { return localStorage.getItem(tokenKey) || pageToken; } catch { return pageToken; }
}

async function create(text) {
  statusEl.textContent = "Creating…";
  try {
    const headers = { "Content-Type": "application/json" };
    const token = storedToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    const resp = await fetch("/api/docs", { method: "POST", headers, body: JSON.stringify(text ? { text } : {}) });
    let body = {};
    try { body = await resp.json(); } catch { /* not JSON */ }
    const who = await whoAmI;
    if (resp.status === 401 && !who.off && !who.user) {
      // Sign-in is on (docs/teams.md): documents are made by people
      // signed in.
      statusEl.replaceChildren("Sign in to create documents. ",
        who.signIn ? el("a", { href: signInURL(who), id: "create-sign-in" }, "Sign in") : "");
      return;
    }
    if (resp.status === 401) {
      // No token, or one the server no longer takes: ask for it.
      pageToken = "";
      try { localStorage.removeItem(tokenKey); } catch { /* nothing kept */ }
      pendingText = text;
      tokenForm.hidden = false;
      $("create-token").focus();
      statusEl.textContent = token ? "The server did not accept that token. Check it and try again." : "";
      return;
    }
    if (!resp.ok) throw new Error(body.error ? body.error.message : `the server answered ${resp.status}`);
    tokenForm.hidden = true;
    rememberDoc({ id: body.id, viewId: body.viewId, opened: Date.now() });
    // The ids travel in the fragment, which browsers never send to
    // servers or put in Referer headers.
    location.href = `/edit.html#${body.id}`;
  } catch (err) {
    statusEl.textContent = `Could not create the document: ${err.message === "Failed to fetch" ? "the server cannot be reached." : err.message}`;
  }
}

tokenForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const token = $("create-token").value.trim();
  if (!token) return;
  pageToken = token;
  try { localStorage.setItem(tokenKey, token); } catch { /* kept for this page only */ }
  $("create-token").value = "";
  create(pendingText ?? "");
});

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
