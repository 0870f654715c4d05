// The one contract between the extension host and its webviews (Alignment view, model editor, run comparison,
// recipe form). It imports nothing at run time: the engine types are type-only imports, erased by the build.
// Two kinds of messages:
//   - requests from a webview, each answered by exactly one reply with the same id (RequestMap: params → result);
//   - events from the host (HostEvent), which need no answer.
// Every message declared here is sent by one side and handled by the other (checked by test/ui/protocol.test.ts).
import type { EvaluateResult, FuseRecipe, InspectResult, ProgressEvent, RunRecord } from '../worker/types';

export type { EvaluateResult, FuseRecipe, InspectResult, ProgressEvent, RunRecord };
export type { LayerMapInfo, ModelMetrics, DataArg, FinetuneResult } from '../worker/types';

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
  /** Sorted by match (getMap's `sort`): rowOrder[k] is the original row shown at position k (full map rows). */
  rowOrder?: ArrayLike<number>;
  /** Each full-map row's best `k` anchor columns (original indices, −1 = none) and their share of its mass (typed
   * arrays from the maps thread: extension/mapThread.ts). */
  top?: { k: number; cols: ArrayLike<number>; mass: ArrayLike<number> };
}

export interface LiveState {
  /** Identifies the job (so a dismissed failure stays dismissed). */
  jobId: number;
  /** What is running, e.g. "Fusing vit48_s10.onnx + vit48_s11.onnx". */
  title: string;
  /** The run folder the job works on, if any (finetune, re-evaluate). */
  runDir?: string;
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
  /** Times (ms since the epoch) the job and its current stage started, and how long the job took last time (s):
   * the view shows elapsed time and the time left (contracts/progress.ts). */
  startedAt?: number;
  stageStartedAt?: number;
  expectedSeconds?: number;
}

export interface RunView {
  runDir: string;
  record: RunRecord;
}

/** What the webview asks the host, and what each request returns. */
export interface RequestMap {
  /** The webview is loaded; the host answers with the view's initial content as events. */
  ready: { params: Record<string, never>; result: void };
  /** A map of the shown run, down-sampled to at most maxSide per side. */
  /** `prefetch`: a map the view fetches ahead (a neighbour of the selected one): read on the background thread. */
  getMap: { params: { runDir: string; tensor: string; maxSide: number; sort?: boolean; top?: number; prefetch?: boolean }; result: MapPayload | null };
  /** The detail maps (at most maxSide per side, with the top-`top` table) that fuse stored for these layers of the
   * shown run, in the order asked; null for a layer without one (the host reads nothing else: a run made before
   * stored details answers all null). What the view fetches ahead when a run is shown. */
  getStoredMaps: { params: { runDir: string; tensors: string[]; maxSide: number; top: number }; result: (MapPayload | null)[] };
  /** A command on the shown run or model (see RunAction). */
  action: { params: { action: RunAction; runDir?: string; tensor?: string }; result: boolean };
  /** Saves bytes the webview made (a PNG of a heatmap or chart) where the user chooses. */
  saveFile: { params: { suggestedName: string; bytes: Uint8Array; filter: 'png' }; result: string | null };
  /** Recipe form: writes the recipe to a `*.otfuse.json` file; returns its path (null when cancelled). */
  saveRecipe: { params: { recipe: FuseRecipe; suggestedName: string; fuse: boolean }; result: string | null };
  /** Dismisses a finished (failed/cancelled) job's message from the view. */
  dismissLive: { params: { jobId: number }; result: void };
}

export type RunAction =
  | 'evaluate'
  | 'fuseWith'
  | 'finetune'
  | 'inspectAlignment' // model editor
  | 'cancel'
  | 'finetuneRun'
  | 'reevaluateRun'
  | 'reveal'
  | 'compare'
  | 'rerun'
  | 'openLarge'
  | 'openRecipe'
  | 'exportMapCsv'
  | 'exportMapNpy'
  | 'exportAccuracyCsv'
  | 'exportAccuracyMarkdown'
  | 'openSettings'
  | 'retry';

export type RequestName = keyof RequestMap;

export interface RequestMessage<K extends RequestName = RequestName> {
  kind: 'request';
  id: number;
  method: K;
  params: RequestMap[K]['params'];
}

export interface ReplyMessage {
  kind: 'reply';
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** The JSON schema property of one recipe field, as the recipe form needs it. */
export interface RecipeField {
  key: string;
  type: 'string' | 'number' | 'integer' | 'boolean' | 'array';
  enum?: string[];
  description?: string;
  minimum?: number;
  maximum?: number;
  default?: unknown;
}

export type HostEvent =
  /** `first`: the layer (contracts/layers.ts defaultLayer) whose detail map the host sends next, unasked, as
   * 'firstMap' (a run first shown in this view). */
  | { kind: 'event'; type: 'run'; run: RunView | null; first?: string }
  /** The detail map (DETAIL_SIDE, DETAIL_TOP_K, rows unsorted) of the layer a 'run' event named `first`; null when
   * it could not be read (the view then asks for it). */
  | { kind: 'event'; type: 'firstMap'; runDir: string; tensor: string; map: MapPayload | null }
  | { kind: 'event'; type: 'thumbnails'; runDir: string; maps: MapPayload[] }
  | { kind: 'event'; type: 'live'; live: LiveState | null }
  /** Runs with a job in progress (their Finetune/Re-evaluate buttons are disabled). */
  | { kind: 'event'; type: 'busyRuns'; runDirs: string[] }
  | { kind: 'event'; type: 'model'; file: string; inspect?: InspectResult; alignmentError?: string; error?: string; errorActions?: RunAction[] }
  | { kind: 'event'; type: 'evaluation'; result: EvaluateResult; data: string }
  | { kind: 'event'; type: 'compare'; runs: RunView[] }
  | { kind: 'event'; type: 'recipeForm'; fields: RecipeField[]; recipe: FuseRecipe; models?: string[] }
  | { kind: 'event'; type: 'large'; title: string; map: MapPayload };

export type HostEventType = HostEvent['type'];
export type WebviewToHost = RequestMessage | ReplyMessage;
export type HostToWebview = HostEvent | ReplyMessage;

/** The views one bundle renders (document.body.dataset.view). */
export type ViewKind = 'alignment' | 'model' | 'compare' | 'recipe' | 'large';
