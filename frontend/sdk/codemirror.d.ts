import type { Annotation, Extension } from "@codemirror/state";
import type { EditorView } from "@codemirror/view";
import type { AstralIndex, CollabDocument } from "./collabd.js";

/** Marks the transactions the binding makes for other editors' ops. */
export const fromCollab: Annotation<boolean>;

/** On the binding's transactions for remote ops: the op's author id ("" for the server's own, null for a resync). */
export const collabAuthor: Annotation<string | null>;

export interface CollabOptions {
  /** Send this editor's selections and draw the others' (default true). */
  presence?: boolean;
  /** Send the selection this many ms after it stops moving (default 50). */
  selectionDelay?: number;
  /** Redraw the others' carets at most every this many ms (default 80). */
  drawDelay?: number;
}

/** The extension binding an EditorView (whose state starts with doc.text) to doc: sync, remote carets, per-user undo with history(). */
export function collab(doc: CollabDocument, options?: CollabOptions): Extension;

/** The binding's UTF-16 / code point index of view's text, kept in step with every change; null when view is not bound. */
export function collabIndex(view: EditorView): AstralIndex | null;
