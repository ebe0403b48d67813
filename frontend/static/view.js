// view.js: the read-only page. It follows the document over Server-Sent
// Events; EventSource reconnects by itself and resumes with Last-Event-ID.
import { apply } from "./protocol.js";

const docEl = document.getElementById("doc");
const statusEl = document.getElementById("status");
const revEl = document.getElementById("rev");
const viewId = location.hash.slice(1);

function setStatus(state, detail) {
  statusEl.dataset.state = state;
  statusEl.textContent = detail ? `${state}: ${detail}` : state;
}

let text = "";
const es = new EventSource(`/api/view/${encodeURIComponent(viewId)}/events`);
es.addEventListener("open", () => setStatus("online"));
es.addEventListener("snapshot", (ev) => {
  const d = JSON.parse(ev.data);
  text = d.text;
  docEl.textContent = text;
  revEl.textContent = `revision ${d.rev}`;
});
es.addEventListener("op", (ev) => {
  const d = JSON.parse(ev.data);
  text = apply(text, d.op);
  docEl.textContent = text;
  revEl.textContent = `revision ${d.rev}`;
});
es.addEventListener("error", () => {
  if (es.readyState === EventSource.CLOSED) setStatus("failed", "this link does not name a document");
  else setStatus("offline", "reconnecting");
});
