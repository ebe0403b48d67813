// store.js: what an editor tab must not lose, kept in IndexedDB so that a
// reload, a closed tab or a crash while offline loses no keystroke.
//
// Per client id (one per tab) the store holds a snapshot — the local text
// and the OTClient state (revision, last seq, the op in flight with its
// seq, the buffer) at one moment — and a log of every state change since:
// local edits, remote ops and acks, appended as they happen (a few small
// writes per keystroke; IndexedDB runs transactions on one store in the
// order they were made). Replaying the log over the snapshot gives exactly
// the state the tab had, and the session then resumes as a reconnect
// would: hello with the revision, the op in flight resent with its seq,
// which the server acknowledges without applying twice if it already had
// it. The snapshot is rewritten, and the log emptied, when the tab is idle.
//
// Two tabs of one document must not share a client id (the server would
// let each supersede the other), so a tab holds a Web Lock named after
// its client id for as long as it lives, and adopts a stored client only
// when it can take that lock: its own after a reload, or one left by a
// closed tab.

const DB = "collabd", VERSION = 1;

function req(r) {
  return new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve(); tx.onerror = () => reject(tx.error); tx.onabort = () => reject(tx.error);
  });
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// lock takes the Web Lock name if it is free and holds it until the page
// goes away; resolves to whether it got it. Without the Locks API (an
// insecure context) every lock is granted: one tab per document then.
function lock(name) {
  const locks = globalThis.navigator?.locks; // none in Node 20
  if (!locks) return Promise.resolve(true);
  return new Promise((resolve) => {
    locks.request(name, { ifAvailable: true }, (l) => {
      resolve(!!l);
      return l ? new Promise(() => {}) : undefined;
    });
  });
}

export class Store {
  constructor(db) { this.db = db; this.n = 0; this.clientId = null; this.failed = false; }

  static async open() {
    if (!globalThis.indexedDB) return null;
    const r = indexedDB.open(DB, VERSION);
    r.onupgradeneeded = () => {
      const db = r.result;
      const clients = db.createObjectStore("clients", { keyPath: "clientId" });
      clients.createIndex("docId", "docId");
      db.createObjectStore("log", { keyPath: ["clientId", "n"] });
    };
    try { return new Store(await req(r)); } catch { return null; }
  }

  // adopt picks this tab's client id for docId and loads what is stored
  // for it: {clientId, record (or null), events}. preferred is the id
  // this tab used before a reload.
  async adopt(docId, preferred) {
    const tx = this.db.transaction("clients");
    const recs = await req(tx.objectStore("clients").index("docId").getAll(docId));
    // Prefer our own, then a closed tab's with edits waiting, then the newest.
    recs.sort((a, b) => (b.pending || 0) - (a.pending || 0) || (b.updated || 0) - (a.updated || 0));
    const ids = [...new Set([preferred, ...recs.map((r) => r.clientId)].filter(Boolean))];
    for (const id of ids) {
      if (!(await lock(`collabd-client-${id}`))) continue;
      const rec = recs.find((r) => r.clientId === id) || null;
      const events = rec ? await this.events(id, rec.n) : [];
      this.clientId = id;
      this.n = events.length ? events[events.length - 1].n : rec ? rec.n : 0;
      return { clientId: id, record: rec, events: events.map((e) => e.ev) };
    }
    let id = uuid();
    while (!(await lock(`collabd-client-${id}`))) id = uuid();
    this.clientId = id;
    return { clientId: id, record: null, events: [] };
  }

  async events(clientId, after) {
    const range = IDBKeyRange.bound([clientId, after + 1], [clientId, Infinity]);
    return req(this.db.transaction("log").objectStore("log").getAll(range));
  }

  // append logs one state change; the returned promise settles when it is
  // on disk (the page does not wait for it).
  append(ev) {
    const n = ++this.n;
    const tx = this.db.transaction("log", "readwrite");
    tx.objectStore("log").put({ clientId: this.clientId, n, ev });
    return done(tx).catch((err) => { this.failed = true; throw err; });
  }

  // snapshot stores the whole state and drops the log it replaces.
  snapshot(docId, snap) {
    const n = this.n, clientId = this.clientId;
    const tx = this.db.transaction(["clients", "log"], "readwrite");
    tx.objectStore("clients").put({ clientId, docId, n, updated: Date.now(), pending: snap.pending, snap });
    tx.objectStore("log").delete(IDBKeyRange.bound([clientId, 0], [clientId, n]));
    return done(tx);
  }

  // forget drops everything stored for this tab's client.
  forget() {
    const clientId = this.clientId;
    const tx = this.db.transaction(["clients", "log"], "readwrite");
    tx.objectStore("clients").delete(clientId);
    tx.objectStore("log").delete(IDBKeyRange.bound([clientId, 0], [clientId, Infinity]));
    this.n = 0;
    return done(tx);
  }

  // forgetDoc drops what is stored for a document by tabs that are gone
  // and left no edits waiting (the home page's "Remove").
  async forgetDoc(docId) {
    const recs = await req(this.db.transaction("clients").objectStore("clients").index("docId").getAll(docId));
    for (const r of recs) {
      // Edits logged since the snapshot may be waiting too.
      if (r.pending || (await this.events(r.clientId, r.n)).length) continue;
      if (!(await lock(`collabd-client-${r.clientId}`))) continue;
      this.clientId = r.clientId;
      await this.forget();
    }
  }
}
