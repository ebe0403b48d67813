import type { AstralIndex, CollabDocument } from "./collabd.js";

/** The parts of a Monaco ITextModel the binding uses. */
export interface MonacoModel {
  getValue(): string;
  setValue(text: string): void;
  getValueLength(): number;
  getPositionAt(offset: number): { lineNumber: number; column: number };
  getOffsetAt(position: { lineNumber: number; column: number }): number;
  applyEdits(edits: Array<{ range: MonacoRange; text: string; forceMoveMarkers?: boolean }>): unknown;
  onDidChangeContent(fn: (e: { changes: Array<{ rangeOffset: number; rangeLength: number; text: string }> }) => void): { dispose(): void };
}
export interface MonacoRange { startLineNumber: number; startColumn: number; endLineNumber: number; endColumn: number }
/** The parts of a Monaco ICodeEditor the binding uses (for carets). */
export interface MonacoEditor {
  deltaDecorations(old: string[], decorations: unknown[]): string[];
  onDidChangeCursorSelection(fn: (e: any) => void): { dispose(): void };
}

export function bindMonaco(doc: CollabDocument, model: MonacoModel, editor?: MonacoEditor | null, options?: { presence?: boolean }): () => void;
export function cpToMonaco(model: MonacoModel, index: AstralIndex, cp: number): { lineNumber: number; column: number };
export function monacoToCp(model: MonacoModel, index: AstralIndex, pos: { lineNumber: number; column: number }): number;
