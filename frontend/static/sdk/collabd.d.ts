// Types of the collabd client SDK (collabd.mjs). Hand-written: the SDK is
// plain JavaScript, and frontend/sdk/test checks its API against this
// file with `tsc --noEmit`.

/** An op: positive n retains n code points, a string inserts it, negative n deletes -n code points. */
export type Op = Array<number | string>;

/** A selection [anchor, head] in code points; a caret has anchor === head. */
export type Range = [number, number];

export interface Peer {
  /** The public author id (never a client id). */
  author: string;
  name: string;
  /** #rrggbb */
  color: string;
  ranges: Range[];
}

export interface Change {
  /** The op, on the text as it was just before (code points). */
  op: Op;
  /** Author id of whoever made it; null for a resync that replaced the text, "" for the server's own ops. */
  author: string | null;
  /** Set for this editor's own edits. */
  local: boolean;
  rev: number;
  /** Set when the text was replaced wholesale (the server no longer had the ops to resume with). */
  reset?: boolean;
}

export type Status = "connecting" | "live" | "offline" | "failed" | "closed";

/** Error codes are the protocol's (not_found, unauthorized, forbidden, bad_op, too_large, rate_limited, conflict, ...), or "closed", "network". */
export class CollabError extends Error {
  code: string;
  status?: number;
  /** On a 409 conflict of a strict HTTP write: the head revision. */
  rev?: number;
  constructor(code: string, message?: string, status?: number);
}

/** Stores a session's state so that a reload resumes it; indexedDBPersistence() is the one the SDK ships. */
export interface Persistence {
  load(docId: string, preferredClientId?: string | null): Promise<{ clientId: string; client?: OTClient; text?: string; author?: string | null } | null>;
  attach?(state: () => { text: string; client: unknown; author: string | null; pending: number } | null | undefined): void;
  record(event: { k: "local" | "remote" | "ack" | "snap"; [key: string]: unknown }): void;
  flush?(): void;
  forget?(): Promise<void>;
  close?(): void;
}

export interface OpenOptions {
  /** The collabd server: "https://collab.example.com" (ws(s):// works too). Defaults to the page's origin in a browser. */
  server?: string;
  /** The document's edit id. */
  id: string;
  /** An access token (docs/embedding.md), when the server has them on. */
  token?: string;
  /** Called shortly before the token's exp (and after a 401) for a fresh one. */
  getToken?: () => Promise<string> | string;
  /** The name the other editors see (a token's name claim wins). */
  name?: string;
  /** A WebSocket constructor: needed in Node before 22 (the ws package's). */
  WebSocket?: unknown;
  /** fetch, for the HTTP calls (default: the global one). */
  fetch?: typeof fetch;
  /** Reuse a client id (the session's secret resume key). */
  clientId?: string;
  /** Keep unsent edits across reloads: indexedDBPersistence(). */
  persistence?: Persistence;
}

/** A comment thread (docs/comments.md); its range in code points of the local text, moved through every edit. */
export interface CommentThread {
  id: string;
  range: Range;
  text: string;
  author: string;
  name?: string;
  resolved?: boolean;
  detached?: boolean;
  replies?: unknown[];
  [key: string]: unknown;
}
/** The server's welcome (docs/protocol.md), as the "welcome" event gives it. */
export interface Welcome {
  rev: number;
  viewId: string;
  author?: string;
  color?: string;
  [key: string]: unknown;
}
export class CollabDocument {
  /** Loads (persistence), connects and resolves once live: new CollabDocument(options), then load() and connect(). */
  static open(options: OpenOptions): Promise<CollabDocument>;
  constructor(options: OpenOptions);
  /** Restores what the persistence adapter holds (the text with unsent edits), without connecting; resolves to whether there was such a state. */
  load(): Promise<boolean>;
  /** Starts the session (after load()) and resolves once live; rejects with a CollabError when the server refuses. */
  connect(): Promise<void>;

  readonly server: string;
  readonly id: string;
  readonly clientId: string | null;
  /** The document's view id, from the server's welcome. */
  readonly viewId?: string;
  /** This editor's color, from the server's welcome. */
  readonly color?: string;
  /** The local text, with this editor's unacknowledged edits. */
  readonly text: string;
  /** Length of the text in code points. */
  readonly length: number;
  /** The latest server revision applied. */
  readonly rev: number;
  /** This editor's public author id. */
  readonly author: string | null;
  readonly token: string | null;
  /** How many local edits the server has not acknowledged. */
  readonly pending: number;
  readonly status: Status;
  /** While offline: when the next attempt is made (ms since the epoch); 0 otherwise. */
  readonly retryAt: number;
  /** The text is here (restored or welcomed) and the document neither failed nor closed: edits may be made. */
  readonly editable: boolean;
  readonly peers: Peer[];
  /** The comment threads, by id. */
  readonly comments: Map<string, CommentThread>;
  /** The HTTP calls of this server, with this document's token. */
  readonly api: CollabAPI;

  /** Insert text at code point pos. Throws RangeError outside the text. */
  insert(pos: number, text: string): void;
  /** Delete count code points from pos. Throws RangeError outside the text. */
  delete(pos: number, count: number): void;
  /** Make the text text, with the smallest single edit. */
  replace(text: string): void;
  /** Apply an op made on the current text. Throws a CollabError "not_ready" before the text is here (see editable). */
  applyOp(op: Op): void;

  on(event: "change", fn: (change: Change) => void): () => void;
  on(event: "presence", fn: (peers: Peer[]) => void): () => void;
  /** why: "shutting_down" when the server said so; delay: ms until the next attempt, when offline. */
  on(event: "status", fn: (status: Status, why?: string, delay?: number) => void): () => void;
  on(event: "welcome", fn: (welcome: Welcome) => void): () => void;
  /** The count of unacknowledged edits changed (an edit, an ack). */
  on(event: "pending", fn: (pending: number) => void): () => void;
  /** The comment threads changed; message is the "comment" message of one change, or null for the whole list. */
  on(event: "comments", fn: (threads: Map<string, CommentThread>, message: unknown) => void): () => void;
  on(event: "error", fn: (error: CollabError) => void): () => void;
  on(event: "conflict", fn: () => void): () => void;
  off(event: string, fn: (...args: any[]) => void): void;

  /** Tell the others this editor's selections (code points); sent once nothing is unacknowledged. */
  setSelection(ranges: Array<Range | { anchor: number; head: number }>): void;
  setName(name: string): void;
  /** Replace the access token and move the session to it now. */
  setToken(token: string): void;
  /** Resolves when the server has acknowledged every local edit; rejects if the document fails or is closed first. */
  synced(): Promise<void>;
  /** Reconnect now (the network is back); offline() drops the connection until then. */
  reconnect(): void;
  offline(): void;

  ops(from?: number): Promise<OpRecord[]>;
  revisions(options?: RevisionsOptions): Promise<Revision[]>;
  textAt(rev: number): Promise<string>;
  restore(rev: number): Promise<{ rev: number }>;

  close(): void;
}

export interface ViewerOptions {
  server?: string;
  /** The document's view id (or id with an edit token). */
  viewId?: string;
  id?: string;
  token?: string;
  getToken?: () => Promise<string> | string;
  fetch?: typeof fetch;
}

/** Follows a document read-only over Server-Sent Events. */
export class CollabViewer {
  static open(options: ViewerOptions): Promise<CollabViewer>;
  readonly text: string;
  readonly rev: number;
  on(event: "change", fn: (change: { op: Op; rev: number; reset?: boolean }) => void): () => void;
  on(event: "snapshot", fn: (snapshot: { text: string; rev: number }) => void): () => void;
  on(event: "status", fn: (status: "live" | "offline") => void): () => void;
  on(event: "error", fn: (error: CollabError) => void): () => void;
  off(event: string, fn: (...args: any[]) => void): void;
  close(): void;
}

export interface OpRecord { rev: number; op: Op; author: string; seq: number; time?: string }
export interface Revision { rev: number; time: string; author: string; inserted: number; deleted: number; run?: string; name?: string; reverts?: string }
export interface RevisionsOptions { from?: number; limit?: number; bucket?: "minute" | "hour" | "day" }
export interface WriteResult { rev: number; run: string }
export interface WriteOptions { rev?: number; name?: string; strict?: boolean; idempotencyKey?: string }

/** The plain HTTP API: create, HTTP writes (from a backend: the edit routes refuse a foreign Origin) and history. */
export class CollabAPI {
  constructor(options?: { server?: string; token?: string; fetch?: typeof fetch });
  create(text?: string): Promise<{ id: string; viewId: string; rev: number }>;
  get(id: string, at?: { rev?: number; at?: string | Date }): Promise<{ id: string; viewId: string; rev: number; text: string }>;
  ops(id: string, from?: number): Promise<OpRecord[]>;
  revisions(id: string, options?: RevisionsOptions): Promise<Revision[]>;
  postOp(id: string, write: WriteOptions & { op: Op }): Promise<WriteResult>;
  putText(id: string, write: WriteOptions & { text: string }): Promise<WriteResult>;
  revert(id: string, run: string, name?: string): Promise<{ rev: number }>;
  restore(id: string, rev: number): Promise<{ rev: number }>;
}

export function indexedDBPersistence(options?: { snapshotAfter?: number }): Persistence;

/** The client state machine (one op in flight, a buffer), as our pages use it. */
export class OTClient {
  constructor(rev: number, lastSeq: number);
  rev: number;
  lastSeq: number;
  synced(): boolean;
  pending(): number;
  toJSON(): unknown;
  static fromJSON(json: unknown): OTClient;
}

/** Converts between UTF-16 offsets and code points in time that does not grow with the text. */
export class AstralIndex {
  constructor(text?: string);
  unitToCp(unit: number): number;
  cpToUnit(cp: number): number;
  cpCount(from: number, to: number): number;
  map(changes: Array<{ fromA: number; toA: number; fromB: number; toB: number }>, slice: (from: number, to: number) => string, newLength: number): void;
}

export const PROTOCOL_VERSION: 2;
export function apply(text: string, op: Op): string;
export function compose(a: Op, b: Op): Op;
export function transform(a: Op, b: Op): [Op, Op];
export function transformIndex(op: Op, pos: number): number;
export function moveRanges(op: Op, ranges: Range[]): Range[];
export function diff(a: string, b: string): Op;
export function normalize(op: Op): Op;
export function baseLen(op: Op): number;
export function cpLen(s: string): number;
export function cpToUnit(s: string, cp: number): number;
export function unitToCp(s: string, unit: number): number;
export function opFromChanges(index: AstralIndex, changes: Array<{ fromA: number; toA: number }>, inserted: (k: number) => string, oldLength: number): Op;
export function changesFromOp(index: AstralIndex, op: Op): Array<{ from: number; to: number; insert: string }>;
export function tokenExp(token: string): number | null;
export function uuid(): string;
