// edit.js: the editor page. The textarea is the local text; every input
// becomes an op through Session, and remote ops are applied to it while
// keeping the user's selection where it belongs.
import { Session, cpToUnit, unitToCp, transformIndex } from "./protocol.js";

const $ = (id) => document.getElementById(id);
const area = $("doc"), statusEl = $("status"), peersEl = $("peers"), revEl = $("rev"), nameEl = $("name");
const docId = location.hash.slice(1);
const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function setStatus(state, detail) {
  statusEl.dataset.state = state;
  statusEl.textContent = detail ? `${state}: ${detail}` : state;
  area.disabled = state === "failed" || state === "connecting" && !session?.client;
}

// selection returns the textarea's selection as [anchor, head] in code points.
function selection() {
  const v = area.value;
  const s = unitToCp(v, area.selectionStart), e = unitToCp(v, area.selectionEnd);
  return area.selectionDirection === "backward" ? [e, s] : [s, e];
}

function lineCol(text, cp) {
  const before = Array.from(text).slice(0, cp).join("");
  const lines = before.split("\n");
  return `${lines.length}:${Array.from(lines[lines.length - 1]).length + 1}`;
}

function renderPeers(peers) {
  peersEl.replaceChildren();
  const me = document.createElement("li");
  me.innerHTML = `<span class="swatch"></span><span></span>`;
  me.firstChild.style.background = myColor || "#999";
  me.lastChild.textContent = `${nameEl.value || "Anonymous"} (you)`;
  peersEl.append(me);
  for (const p of peers.values()) {
    const li = document.createElement("li");
    li.innerHTML = `<span class="swatch"></span><span></span><span class="muted"></span>`;
    li.children[0].style.background = p.color;
    li.children[1].textContent = p.name;
    if (p.ranges.length) li.children[2].textContent = lineCol(area.value, p.ranges[0][1]);
    peersEl.append(li);
  }
}

let myColor = "";
nameEl.value = localStorage.getItem("collabd-name") || "";

let session = null;
if (uuidRe.test(docId)) session = new Session(docId, nameEl.value, {
  onStatus: setStatus,
  onReset(text) { area.value = text; },
  onRemote(op, text) {
    const [a, h] = selection().map((p) => transformIndex(op, p));
    area.value = text;
    const s = cpToUnit(text, Math.min(a, h)), e = cpToUnit(text, Math.max(a, h));
    area.setSelectionRange(s, e, a > h ? "backward" : "forward");
    revEl.textContent = `revision ${session.client.rev}`;
    renderPeers(session.peers);
  },
  onPeers: renderPeers,
  onWelcome(w) {
    myColor = w.color;
    $("copy-view").disabled = false;
    $("copy-view").dataset.url = `${location.origin}/view.html#${w.viewId}`;
    revEl.textContent = `revision ${w.rev}`;
    area.disabled = false;
  },
});
else setStatus("failed", "this link does not name a document");

area.addEventListener("input", () => session && session.edit(area.value));

// Send the selection when it changed, once nothing is in flight.
let sent = "";
setInterval(() => {
  if (!session || !session.client || document.activeElement !== area) return;
  const sel = JSON.stringify(selection());
  if (sel !== sent && session.client.synced()) {
    session.cursor([JSON.parse(sel)]);
    sent = sel;
  }
}, 200);

nameEl.addEventListener("change", () => {
  localStorage.setItem("collabd-name", nameEl.value);
  if (session) { session.name = nameEl.value; session.ws.close(); }
});

async function copy(button, url) {
  try { await navigator.clipboard.writeText(url); button.textContent = "Copied"; }
  catch { prompt("Copy this link", url); }
  setTimeout(() => (button.textContent = button.id === "copy-edit" ? "Copy edit link" : "Copy view link"), 1500);
}
$("copy-edit").addEventListener("click", (e) => copy(e.target, location.href));
$("copy-view").addEventListener("click", (e) => copy(e.target, e.target.dataset.url));
