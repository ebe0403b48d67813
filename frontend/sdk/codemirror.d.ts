import type { Annotation, Extension } from "@codemirror/state";
import type { CollabDocument } from "./collabd.js";

/** Marks the transactions the binding makes for other editors' ops. */
export const fromCollab: Annotation<boolean>;

/** The extension binding an EditorView (whose state starts with doc.text) to doc: sync, remote carets, per-user undo with history(). */
export function collab(doc: CollabDocument, options?: { presence?: boolean }): Extension;
