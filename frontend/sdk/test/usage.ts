// usage.ts: the SDK's API as docs/embedding.md shows it, type-checked
// against the hand-written .d.ts by cmd/collabd's TestSDKTypes
// (tsc --noEmit). Lines marked @ts-expect-error must fail to check.
import { CollabDocument, CollabViewer, CollabAPI, CollabError, indexedDBPersistence, apply, type Change, type Peer, type Op } from "collabd";
import { bindTextarea } from "collabd/textarea";
import { collab, collabIndex, collabAuthor } from "collabd/codemirror";
import { bindMonaco, cpToMonaco } from "collabd/monaco";
import { AstralIndex } from "collabd";

export async function usage(ta: HTTPTextArea) {
  const doc = await CollabDocument.open({ server: "https://collab.example.com", id: "id", token: "t", name: "Ada", WebSocket: globalThis.WebSocket });
  const text: string = doc.text;
  const rev: number = doc.rev;
  doc.insert(0, "hello");
  doc.delete(0, 1);
  const off = doc.on("change", (c: Change) => { const op: Op = c.op; const who: string | null = c.author; void op; void who; });
  off();
  doc.on("presence", (peers: Peer[]) => peers.map((p) => p.ranges[0][0] + p.name.length));
  doc.setSelection([[0, 1]]);
  await doc.synced();
  doc.close();
  // @ts-expect-error: positions are numbers
  doc.insert("0", "x");
  // @ts-expect-error: there is no "changed" event
  doc.on("changed", () => {});

  await CollabDocument.open({ id: "x", getToken: async () => "fresh", persistence: indexedDBPersistence() });
  // As the editor page does: what persistence holds first, then the session.
  const page = new CollabDocument({ id: "x", persistence: indexedDBPersistence() });
  const restored: boolean = await page.load();
  page.on("status", (s, why, delay) => console.log(s, why, delay, page.retryAt));
  page.on("welcome", (w) => w.viewId + w.rev);
  page.on("pending", (n: number) => n + 1);
  page.on("comments", (threads) => [...threads.values()].map((t) => t.range[0]));
  if (restored && page.editable) page.insert(0, "offline");
  await page.connect();
  const v = await CollabViewer.open({ server: "https://c", viewId: "v" });
  v.on("change", ({ op, rev }) => apply(v.text, op) + rev);
  const api = new CollabAPI({ server: "https://c", token: "t" });
  const { id } = await api.create("x");
  const w = await api.postOp(id, { rev: 1, op: [1, "y"], name: "bot", idempotencyKey: "k" });
  await api.putText(id, { text: "z", strict: true });
  try { await api.revert(id, w.run); } catch (e) { if (e instanceof CollabError) console.log(e.code, e.status); }

  const unbind: () => void = bindTextarea(doc, ta as unknown as HTMLTextAreaElement);
  unbind();
  const ext = collab(doc, { presence: true, selectionDelay: 0, drawDelay: 80 });
  void ext;
  const idx: AstralIndex | null = collabIndex({} as unknown as Parameters<typeof collabIndex>[0]);
  void idx; void collabAuthor;
  const model = {
    getValue: () => "", setValue: (_: string) => {}, getValueLength: () => 0,
    getPositionAt: (_: number) => ({ lineNumber: 1, column: 1 }), getOffsetAt: (_: { lineNumber: number; column: number }) => 0,
    applyEdits: () => [], onDidChangeContent: () => ({ dispose() {} }),
  };
  bindMonaco(doc, model)();
  cpToMonaco(model, new AstralIndex(""), 0);
  return [text, rev];
}

type HTTPTextArea = { value: string };
