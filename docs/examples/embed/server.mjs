// server.mjs: a small application that embeds collabd, with Node's
// standard library only. It signs people in its own way (here: a name in
// a form, kept in a signed cookie; yours would check a password or an
// SSO), keeps its own notes (each backed by a collabd document it created
// with a create token), mints a short-lived edit token for whoever may
// edit a note, and serves a page that edits the note through the collabd
// SDK, loaded from the collabd server.
//
//   COLLABD_URL=https://collab.example.com COLLABD_JWT_SECRET=... node server.mjs
//
// collabd runs with -auth-key-file holding the same secret, and with
// -allowed-origins naming this application's host (its pages open the
// editing WebSocket). Environment: COLLABD_URL, COLLABD_JWT_SECRET, PORT
// (default 3000; 0 picks one), HOST (default 127.0.0.1). It prints
// "example listening on URL" when ready.

import http from "node:http";
import crypto from "node:crypto";

const collabd = (process.env.COLLABD_URL || "http://127.0.0.1:8080").replace(/\/$/, "");
const secret = process.env.COLLABD_JWT_SECRET;
if (!secret) throw new Error("COLLABD_JWT_SECRET is required (the secret of collabd's -auth-key-file)");

// ---- tokens (docs/embedding.md, "Minting tokens") ------------------------------

function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const head = b64({ alg: "HS256", typ: "JWT" }), body = b64(claims);
  const sig = crypto.createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}
const now = () => Math.floor(Date.now() / 1000);
const TOKEN_SECONDS = Number(process.env.TOKEN_SECONDS || 300);
const editToken = (doc, name) => jwt({ doc, role: "edit", name, exp: now() + TOKEN_SECONDS });

// ---- this application's own sign-in: a signed cookie ------------------------------

const cookieKey = crypto.randomBytes(32);
const sign = (v) => `${Buffer.from(v).toString("base64url")}.${crypto.createHmac("sha256", cookieKey).update(v).digest("base64url")}`;
function user(req) {
  const m = /(?:^|;\s*)user=([^;]+)/.exec(req.headers.cookie || "");
  if (!m) return null;
  const [v, mac] = m[1].split(".");
  const name = Buffer.from(v || "", "base64url").toString();
  const want = crypto.createHmac("sha256", cookieKey).update(name).digest("base64url");
  return mac && mac.length === want.length && crypto.timingSafeEqual(Buffer.from(mac), Buffer.from(want)) ? name : null;
}

// ---- the application's data: one shared note, created on first use ----------------

let noteId = null;
async function note() {
  if (noteId) return noteId;
  const r = await fetch(`${collabd}/api/docs`, {
    method: "POST",
    headers: { Authorization: `Bearer ${jwt({ doc: "*", role: "create", exp: now() + 60 })}`, "Content-Type": "application/json" },
    body: JSON.stringify({ text: "Welcome to the team notes.\n" }),
  });
  if (!r.ok) throw new Error(`collabd create: ${r.status}`);
  noteId = (await r.json()).id;
  return noteId;
}

// ---- pages ---------------------------------------------------------------------------

const esc = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const signIn = `<!doctype html><meta charset="utf-8"><title>Team notes: sign in</title>
<h1>Team notes</h1><form method="post" action="/login"><label>Your name <input name="name" required maxlength="40"></label> <button>Sign in</button></form>`;
const notePage = (name) => `<!doctype html><meta charset="utf-8"><title>Team notes</title>
<style>body{font:16px system-ui;margin:2em} textarea{width:100%;height:20em;font:15px ui-monospace,monospace} #who li{list-style:none}</style>
<h1>Team notes</h1><p>Signed in as <strong id="me">${esc(name)}</strong> · <span id="status">connecting…</span></p>
<textarea id="note" aria-label="Note"></textarea>
<ul id="who"></ul>
<script type="module" src="/note.js"></script>`;
// The page's script: the SDK from the collabd server, a token from us.
const noteJS = `import { CollabDocument } from "${collabd}/sdk/collabd.mjs";
import { bindTextarea } from "${collabd}/sdk/textarea.mjs";
const getToken = async () => (await (await fetch("/token", { method: "POST" })).json()).token;
const { id, token, name } = await (await fetch("/token", { method: "POST" })).json();
const doc = await CollabDocument.open({ server: "${collabd}", id, token, name, getToken });
bindTextarea(doc, document.getElementById("note"));
const status = document.getElementById("status");
status.textContent = doc.status;
doc.on("status", (s) => { status.textContent = s; });
doc.on("presence", (peers) => {
  document.getElementById("who").replaceChildren(...peers.map((p) => {
    const li = document.createElement("li");
    li.textContent = "● " + p.name;
    li.style.color = p.color;
    return li;
  }));
});
window.doc = doc;
`;

const server = http.createServer(async (req, res) => {
  const send = (status, type, body, headers = {}) => { res.writeHead(status, { "Content-Type": type, ...headers }); res.end(body); };
  try {
    const url = new URL(req.url, "http://x");
    const who = user(req);
    if (req.method === "POST" && url.pathname === "/login") {
      let body = "";
      for await (const chunk of req) { body += chunk; if (body.length > 1000) break; }
      const name = (new URLSearchParams(body).get("name") || "").trim().slice(0, 40);
      if (!name) return send(400, "text/plain", "a name, please");
      return send(303, "text/plain", "", { Location: "/", "Set-Cookie": `user=${sign(name)}; HttpOnly; SameSite=Lax; Path=/` });
    }
    if (req.method === "GET" && url.pathname === "/") return send(200, "text/html; charset=utf-8", who ? notePage(who) : signIn);
    if (req.method === "GET" && url.pathname === "/note.js") return send(200, "text/javascript; charset=utf-8", noteJS);
    if (req.method === "POST" && url.pathname === "/token") {
      // Your permission check goes here: whoever is signed in may edit.
      if (!who) return send(401, "application/json", JSON.stringify({ error: "sign in first" }));
      const id = await note();
      return send(200, "application/json", JSON.stringify({ id, token: editToken(id, who), name: who }), { "Cache-Control": "no-store" });
    }
    send(404, "text/plain", "not found");
  } catch (err) {
    console.error(err);
    send(500, "text/plain", "internal error");
  }
});

server.listen(Number(process.env.PORT ?? 3000), process.env.HOST || "127.0.0.1", () => {
  console.log(`example listening on http://${server.address().address}:${server.address().port}`);
});
