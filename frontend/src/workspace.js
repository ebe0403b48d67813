// workspace.js: the signed-in home page's list of the team's documents
// (docs/workspace.md): mine, shared with me and my groups', most recently
// edited first, each with its last editor and who is in it now; search
// as one types, filters by tag and by whose, rename and tags, the trash
// with restore. The server's answers are the state;
// every change re-reads the list.

import { $, el, ago } from "./common.js";

const scopes = [["all", "All"], ["mine", "Mine"], ["shared", "Shared with me"], ["group", "My groups"], ["trash", "Trash"]];

// marked turns a snippet (HTML-escaped text with <mark> around matches)
// into nodes without ever parsing it as HTML.
function marked(snippet) {
  const unescape = (s) => s.replace(/&(lt|gt|amp|#34|#39|quot);/g, (_, e) =>
    ({ lt: "<", gt: ">", amp: "&", "#34": '"', "#39": "'", quot: '"' })[e]);
  return snippet.split(/(<mark>.*?<\/mark>)/s).filter(Boolean).map((p) =>
    p.startsWith("<mark>") ? el("mark", {}, unescape(p.slice(6, -7))) : document.createTextNode(unescape(p)));
}

export function workspace(who) {
  const box = $("workspace");
  if (!box || !who.user) return;
  box.hidden = false;
  $("docs-h").textContent = "Opened in this browser";
  const q = $("ws-q");
  const scopeSel = $("ws-scope");
  const list = $("ws-docs");
  const status = $("ws-status");
  const tagsBox = $("ws-tags");
  scopeSel.replaceChildren(...scopes.map(([v, label]) => el("option", { value: v }, label)));
  let tag = "";
  let seq = 0;

  async function call(method, url, body) {
    const r = await fetch(url, { method, headers: body ? { "Content-Type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined });
    if (!r.ok) {
      let msg = `the server answered ${r.status}`;
      try { msg = (await r.json()).error.message; } catch { /* not JSON */ }
      throw new Error(msg);
    }
    return r.status === 204 ? null : r.json();
  }

  async function load() {
    const mine = ++seq;
    const p = new URLSearchParams();
    if (q.value.trim()) p.set("q", q.value);
    if (tag) p.set("tag", tag);
    if (scopeSel.value === "trash") p.set("trash", "true");
    else if (scopeSel.value !== "all") p.set("scope", scopeSel.value);
    try {
      const docs = await call("GET", `/api/docs?${p}`);
      if (mine !== seq) return; // a later keystroke's answer wins
      render(docs);
    } catch (err) {
      if (mine === seq) status.textContent = `Could not list documents: ${err.message}`;
    }
  }

  function render(docs) {
    status.textContent = docs.length ? "" : (q.value.trim() ? "Nothing matches." : scopeSel.value === "trash" ? "The trash is empty." : "No documents here yet.");
    const tags = new Set(docs.flatMap((d) => d.tags));
    if (tag) tags.add(tag);
    tagsBox.replaceChildren(...[...tags].sort().map((t) => el("button", {
      type: "button", class: `small tag${t === tag ? " on" : ""}`, "aria-pressed": t === tag ? "true" : "false",
      onclick: () => { tag = tag === t ? "" : t; load(); },
    }, `#${t}`)));
    list.replaceChildren(...docs.map(row));
  }

  function row(d) {
    const href = d.id ? `/edit.html#${d.id}` : `/view.html#${d.viewId}`;
    const title = d.title || "Untitled";
    // editor and present: who made the latest revision, who has it open
    // (on the server's node) now; older servers send neither.
    const by = d.editor && d.editor.name ? ` by ${d.editor.name === who.user ? "you" : d.editor.name}` : "";
    const here = d.present || [];
    const li = el("li", { class: "ws-doc" },
      el("a", { href, class: "doc-title" }, title),
      el("span", { class: "muted ws-meta" }, `${d.owner === who.user ? "you" : d.owner} · ${d.role} · edited ${ago(Date.parse(d.updated))}${by}`),
      ...(here.length ? [el("span", { class: "ws-present", title: "Editing now" }, `● ${here.join(", ")} in it now`)] : []),
      ...d.tags.map((t) => el("span", { class: "badge" }, `#${t}`)));
    if (d.snippet) li.append(el("p", { class: "snippet" }, ...marked(d.snippet)));
    const actions = el("span", { class: "doc-actions" });
    const act = (label, fn, aria) => el("button", { type: "button", class: "small", "aria-label": `${aria} ${title}`, onclick: async () => {
      try { await fn(); await load(); } catch (err) { status.textContent = `Could not ${aria.toLowerCase()} “${title}”: ${err.message}`; }
    } }, label);
    if (d.trashed) {
      if (d.role === "owner") {
        actions.append(act("Restore", () => call("DELETE", `/api/docs/${d.id}/trash`), "Restore"),
          act("Delete forever", () => call("DELETE", `/api/docs/${d.id}`), "Delete forever"));
      }
    } else {
      if (d.id) actions.append(el("button", { type: "button", class: "small", "aria-label": `Rename or tag ${title}`, onclick: () => editForm(li, d) }, "Rename / tags"));
      if (d.role === "owner") actions.append(act("Trash", () => call("POST", `/api/docs/${d.id}/trash`), "Trash"));
    }
    li.append(actions);
    return li;
  }

  function editForm(li, d) {
    if (li.querySelector("form")) return;
    const title = el("input", { name: "title", value: d.title, "aria-label": "Title", maxlength: "200" });
    const tags = el("input", { name: "tags", value: d.tags.join(", "), "aria-label": "Tags, comma-separated", placeholder: "tags, comma-separated" });
    const form = el("form", { class: "ws-edit" }, title, tags,
      el("button", { type: "submit", class: "small primary" }, "Save"),
      el("button", { type: "button", class: "small", onclick: () => form.remove() }, "Cancel"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await call("PATCH", `/api/docs/${d.id}`, { title: title.value, tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean) });
        await load();
      } catch (err) { status.textContent = `Could not save: ${err.message}`; }
    });
    li.append(form);
    title.focus();
  }

  $("ws-rename-tag").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const from = $("ws-tag-from").value.trim(), to = $("ws-tag-to").value.trim();
    if (!from || !to) return;
    try {
      const r = await call("POST", "/api/tags/rename", { from, to });
      status.textContent = `#${from} is #${to} on ${r.changed} document${r.changed === 1 ? "" : "s"}.`;
      if (tag === from) tag = to;
      await load();
    } catch (err) { status.textContent = `Could not rename the tag: ${err.message}`; }
  });
  let timer = 0;
  q.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 120); });
  scopeSel.addEventListener("change", load);
  load();
}
