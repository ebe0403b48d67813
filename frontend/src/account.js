// account.js: sign-in as the pages show it (docs/teams.md): who is signed
// in, sign-in and sign-out in the header bar, the share dialog of a
// document's owner, and the page for a document one has no access to.
// With sign-in off on the server (GET /api/me answers 404) none of it
// shows.

import { $, el } from "./common.js";

// me asks the server who this browser is: {off: true} when sign-in is off
// or the server cannot be reached, {user: null} when nobody is signed in,
// else {user, groups, session, signIn}.
export async function me() {
  try {
    const r = await fetch("/api/me", { cache: "no-store" });
    if (r.status === 404) return { off: true };
    // The header says whether this server signs people in itself (OIDC).
    const signIn = r.headers.get("X-Collabd-Sign-In") || "";
    if (r.status === 401) return { user: null, signIn };
    if (!r.ok) return { off: true };
    return { ...(await r.json()), signIn };
  } catch { return { off: true }; }
}

// signInURL leads to the server's sign-in, then back to this page.
export function signInURL(who) {
  return `${who.signIn || "/api/signin"}?next=${encodeURIComponent(location.pathname + location.search + location.hash)}`;
}

// accountBar puts who is signed in, and sign-in or sign-out, at the end of
// the header bar.
export function accountBar(who) {
  const bar = document.querySelector("header.bar");
  if (!bar || who.off) return;
  let box = $("account");
  if (!box) { box = el("span", { id: "account", class: "account" }); bar.append(box); }
  if (!who.user) {
    box.replaceChildren(who.signIn ? el("a", { href: signInURL(who), class: "button small", id: "sign-in" }, "Sign in") : el("span", { class: "muted" }, "Not signed in"));
    return;
  }
  const out = who.session ? el("button", { type: "button", class: "small", id: "sign-out", onclick: async () => {
    await fetch("/api/signout", { method: "POST" }).catch(() => {});
    location.reload();
  } }, "Sign out") : null;
  box.replaceChildren(el("span", { class: "who", id: "who", title: who.groups?.length ? `Groups: ${who.groups.join(", ")}` : "" }, who.user), ...(out ? [out] : []));
}

// noAccess fills banner with the page for a document this person may not
// open: the server answers 404 alike for none and for no access, so the
// words cover both; 403 (too little access) says so.
export function noAccess(banner, who, forbidden) {
  const home = el("a", { href: "/", class: "button" }, "Your documents");
  const lines = [];
  if (forbidden) {
    lines.push(el("p", {}, el("strong", {}, "You cannot open this document here. "),
      "Your access does not reach this far (it may be view only, or it was withdrawn), or its links were changed. Ask its owner."));
  } else if (who.user) {
    lines.push(el("p", {}, el("strong", {}, "You do not have access to this document, or it does not exist. "),
      `You are signed in as ${who.user}. Ask its owner to share it with you, or check the link.`));
  } else {
    lines.push(el("p", {}, el("strong", {}, "This document is private, or does not exist. "),
      "Sign in to see the documents shared with you."));
  }
  const actions = el("p", { class: "actions" });
  if (!who.user && who.signIn) actions.append(el("a", { href: signInURL(who), class: "button primary" }, "Sign in"));
  actions.append(home);
  banner.replaceChildren(...lines, actions);
  banner.dataset.kind = "no-access";
  banner.hidden = false;
}

// shareDialog opens the dialog where the document's owner sets what its
// links allow, its members and groups, and rotates its links: hooks
// beforeRotate, rotated (with the new ids) and failed are called around a
// rotation.
export async function shareDialog(docId, hooks) {
  const r = await fetch(`/api/docs/${docId}/access`, { cache: "no-store" });
  if (!r.ok) return false;
  let access = await r.json();
  const dlg = el("dialog", { id: "share-dialog", class: "share-dialog", "aria-labelledby": "share-h" });
  const status = el("p", { class: "muted", role: "status", id: "share-status" });
  const link = el("select", { id: "share-link" },
    el("option", { value: "none" }, "Only the people below"),
    el("option", { value: "view" }, "Anyone with a link can view"),
    el("option", { value: "edit" }, "Anyone with the edit link can edit"));
  link.value = access.link;
  const list = el("ul", { class: "members", id: "share-members" });
  const roles = ["view", "comment", "edit", "owner"];
  const roleSelect = (value, label) => {
    const s = el("select", { "aria-label": label }, ...roles.map((r) => el("option", { value: r }, r)));
    s.value = value;
    return s;
  };
  const render = () => {
    list.replaceChildren(...access.members.map((m, i) => {
      const name = m.user ? m.user : `group ${m.group}`;
      const sel = roleSelect(m.role, `Role of ${name}`);
      sel.addEventListener("change", () => { m.role = sel.value; });
      return el("li", { "data-member": m.user || `@${m.group}` }, el("span", {}, name), sel,
        el("button", { type: "button", class: "small", "aria-label": `Remove ${name}`, onclick: () => { access.members.splice(i, 1); render(); } }, "Remove"));
    }));
    if (!access.members.length) list.append(el("li", { class: "muted" }, "Nobody yet besides the owner."));
  };
  render();
  const who = el("input", { id: "share-who", placeholder: "user name, or @group", autocomplete: "off" });
  const addRole = roleSelect("edit", "Role to give");
  const add = el("form", { class: "add-member", onsubmit: (ev) => {
    ev.preventDefault();
    const v = who.value.trim();
    if (!v) return;
    access.members.push(v.startsWith("@") ? { group: v.slice(1), role: addRole.value } : { user: v, role: addRole.value });
    who.value = "";
    render();
  } }, who, addRole, el("button", { type: "submit" }, "Add"));
  const save = async () => {
    status.textContent = "Saving…";
    const resp = await fetch(`/api/docs/${docId}/access`, { method: "PUT", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ link: link.value, members: access.members }) });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) { status.textContent = `Not saved: ${body.error ? body.error.message : resp.status}`; return; }
    access = body;
    render();
    status.textContent = "Saved.";
  };
  const rotate = async () => {
    if (!confirm("Give this document new links? The current edit and view links stop working at once, and everyone using them is disconnected.")) return;
    status.textContent = "Rotating…";
    hooks.beforeRotate();
    const resp = await fetch(`/api/docs/${docId}/access/rotate`, { method: "POST" }).catch(() => null);
    const body = resp ? await resp.json().catch(() => ({})) : {};
    if (!resp || !resp.ok) {
      hooks.failed();
      status.textContent = `Not rotated: ${body.error ? body.error.message : resp ? resp.status : "the server cannot be reached"}`;
      return;
    }
    dlg.close();
    hooks.rotated(body);
  };
  dlg.append(el("h2", { id: "share-h" }, "Who has access"),
    el("p", { class: "muted" }, `Owner: ${access.owner || "—"}`),
    el("label", { for: "share-link" }, "Links"), link,
    el("h3", {}, "People and groups"), list, add,
    el("p", { class: "actions" },
      el("button", { type: "button", class: "primary", id: "share-save", onclick: save }, "Save"),
      el("button", { type: "button", id: "share-rotate", onclick: rotate }, "New links…"),
      el("button", { type: "button", id: "share-close", onclick: () => dlg.close() }, "Close")),
    status);
  dlg.addEventListener("close", () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  return true;
}
