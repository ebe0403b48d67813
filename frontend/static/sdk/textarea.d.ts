import type { CollabDocument } from "./collabd.js";

/** Binds doc to a <textarea> or <input>; returns the function that unbinds it. */
export function bindTextarea(doc: CollabDocument, el: HTMLTextAreaElement | HTMLInputElement, options?: { presence?: boolean }): () => void;
