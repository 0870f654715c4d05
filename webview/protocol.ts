// The one message protocol between the extension host and its webviews (Alignment view and model editor).
// Typed both ways; the webview receives only what the run record (run.json + maps.safetensors) or the engine's
// inspect result contains.
import type { InspectResult, ProgressEvent, RunRecord, EvaluateResult } from '../worker/types';

/** A transport map (or a down-sampled view of it), row-major. */
export interface MapPayload {
  tensor: string;
  /** Size of the full map. */
  rows: number;
  cols: number;
  /** Size of `data` (≤ rows × cols; block means when smaller). */
  outRows: number;
  outCols: number;
  data: Float32Array;
  min: number;
  max: number;
}

export interface LiveState {
  /** What is running, e.g. "Fusing vit48_s10.onnx + vit48_s11.onnx". */
  title: string;
  stage: string;
  message?: string;
  done?: number;
  total?: number;
  layer?: string;
  layersDone: string[];
  /** Loss values seen so far while finetuning. */
  loss: { step: number; loss: number }[];
  state: 'running' | 'done' | 'failed' | 'cancelled';
  error?: string;
}

export interface RunView {
  runDir: string;
  record: RunRecord;
}

export type HostToWebview =
  | { type: 'run'; run: RunView | null }
  | { type: 'thumbnails'; runDir: string; maps: MapPayload[] }
  | { type: 'map'; runDir: string; map: MapPayload }
  | { type: 'live'; live: LiveState | null }
  | { type: 'model'; file: string; inspect?: InspectResult; alignmentError?: string; error?: string }
  | { type: 'evaluation'; result: EvaluateResult; data: string }
  | { type: 'busy'; busy: boolean };

export type WebviewToHost =
  | { type: 'ready' }
  | { type: 'selectLayer'; runDir: string; tensor: string }
  | { type: 'action'; action: 'evaluate' | 'fuseWith' | 'finetune' | 'inspectAlignment' | 'openRun' | 'reveal' | 'cancel' | 'finetuneRun' | 'reevaluateRun' };

export type { ProgressEvent };
