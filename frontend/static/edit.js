// edit.js: the editor page. The textarea is the local text; every input
// becomes an op through Session, and remote ops are applied to it while
// keeping the user's selection where it belongs.
import { Session, cpToUnit, unitToCp, transformIndex } from "./protocol.js";

const $ = (id) => document.getElementById(id);
const area = $("doc"), marksEl = $("marks"), statusEl = $("status"), peersEl = $("peers"), revEl = $("rev"), nameEl = $("name");
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

// Past this many code points the marks are not drawn: rebuilding them on
// every change would cost more than they are worth.
const maxMarked = 200_000;

// renderMarks draws the other editors' selections and carets in the
// mirror under the textarea: the text split at every range boundary, each
// piece wrapped in the color of the selection covering it.
function renderMarks(peers) {
  const cps = Array.from(area.value);
  marksEl.replaceChildren();
  if (cps.length > maxMarked) return;
  const sels = [], carets = new Map(); // caret position -> peers there
  for (const p of peers.values()) {
    for (const [a, h] of p.ranges) {
      const lo = Math.min(a, h, cps.length), hi = Math.min(Math.max(a, h), cps.length);
      if (lo < hi) sels.push({ lo, hi, color: p.color });
      const at = Math.min(h, cps.length);
      if (!carets.has(at)) carets.set(at, []);
      carets.get(at).push(p);
    }
  }
  const cuts = [...new Set([0, cps.length, ...carets.keys(), ...sels.flatMap((s) => [s.lo, s.hi])])].sort((x, y) => x - y);
  for (let i = 0; i < cuts.length; i++) {
    for (const p of carets.get(cuts[i]) || []) {
      const c = document.createElement("span");
      c.className = "caret";
      c.style.setProperty("--c", p.color);
      c.dataset.name = p.name;
      marksEl.append(c);
    }
    if (i + 1 === cuts.length) break;
    const piece = cps.slice(cuts[i], cuts[i + 1]).join("");
    const sel = sels.find((s) => s.lo <= cuts[i] && cuts[i] < s.hi);
    if (!sel) { marksEl.append(piece); continue; }
    const m = document.createElement("span");
    m.className = "sel";
    m.style.background = sel.color + "40";
    m.textContent = piece;
    marksEl.append(m);
  }
  // A trailing newline needs something after it to take up its line.
  marksEl.append("\u200b");
  marksEl.scrollTop = area.scrollTop;
}

function renderPeers(peers) {
  renderMarks(peers);
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

area.addEventListener("input", () => {
  if (!session) return;
  session.edit(area.value);
  renderMarks(session.peers);
});
area.addEventListener("scroll", () => { marksEl.scrollTop = area.scrollTop; });

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
