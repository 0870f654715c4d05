// The engine's public data types: requests, results, progress events and the run record (run.json).
// The extension, the CLI and the webview read only these shapes.
import type { DatasetSpec } from './data/dataset';
import type { ErrorInfo } from './errors';
import type { ProviderChoice, ProviderReport } from './runtime/providers';
import type { ModelSummary } from './onnx/model';

export type { DatasetSpec, ErrorInfo, ProviderChoice, ProviderReport, ModelSummary };

/** A `--data` argument: a path (.npz, .json spec, IDX images) or a spec object. */
export type DataArg = string | DatasetSpec;

export interface ProgressEvent {
  /** e.g. 'load', 'activations', 'align', 'write', 'evaluate', 'finetune'. */
  stage: string;
  message?: string;
  done?: number;
  total?: number;
  /** The aligned layer group a fusion event concerns. */
  layer?: string;
  /** Numbers worth plotting live: loss, lr, accuracy, throughput. */
  metrics?: Record<string, number>;
}

export interface JobContext {
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
}

export interface InspectRequest {
  model: string;
  /** Also derive and return the alignment structure (transport-map flow graph). */
  alignment?: boolean;
  provider?: ProviderChoice;
}

export interface InspectResult {
  summary: ModelSummary;
  provider: ProviderReport;
  /** Human-readable alignment structure, when requested. */
  alignment?: AlignmentSummary;
}

export interface AlignmentSummary {
  hiddenSize: number;
  layers: number;
  heads: number;
  headDim: number;
  /** One entry per aligned group (a layer whose outputs get a transport map). */
  groups: { name: string; kind: string; width: number; params: string[]; inputFrom?: string; note?: string }[];
  residualPoints: string[];
  text: string;
}

export interface EvaluateRequest {
  model: string;
  data: DataArg;
  provider?: ProviderChoice;
  batchSize?: number;
  limit?: number;
}

export interface EvaluateResult {
  model: string;
  accuracy: number;
  loss: number;
  samples: number;
  seconds: number;
  provider: ProviderReport;
}

export type OtSolver = 'emd' | 'sinkhorn';
export type AlignBy = 'acts' | 'wts';
export type ResidualPolicy = 'no_resid' | 'only_resid' | 'mean' | 'weighted_scalar' | 'weighted_matrix';
export type QkMode = 'separate' | 'joint' | 'eq_t_map';

/** Everything a fusion run needs (also the JSON recipe's shape; flags override it). */
export interface FuseRecipe {
  name?: string;
  alignBy?: AlignBy;
  solver?: OtSolver;
  reg?: number;
  groundMetric?: 'euclidean' | 'sqeuclidean' | 'cosine';
  costNorm?: 'max' | 'median' | 'mean' | 'none';
  residualPolicy?: ResidualPolicy;
  qk?: QkMode;
  /** Activation samples used for the cost (default 200). */
  samples?: number;
  tokenFilter?: 'all' | 'cls' | 'window';
  /** Cap on activation samples × tokens per tensor (a seeded random subset beyond it; 0 = no cap; default 8192). */
  tokenBudget?: number;
  /** Seed of that token subsample (default 0). */
  tokenSeed?: number;
  /** Element type of maps.safetensors: 'F32' (default) or 'F16' (half the size; ≤ 4.9e-4 relative error per entry). */
  mapsDtype?: 'F32' | 'F16';
  standardize?: boolean;
  /** Weights α per model (anchor first); default uniform. */
  weights?: number[];
  /** Reference-compatible behaviour (per-sample batches, its quirks). */
  preset?: 'default' | 'reference' | 'exact' | 'weights';
  /** Head-aware attention maps: heads matched as units (one head assignment for Q, K and V), one map shared by
   * Q and K inside each head. With EMD, QKᵀ of every head is preserved exactly. */
  headAware?: boolean;
}

export interface FuseRequest {
  /** Models to fuse; the anchor is `anchor` if given, else the first. */
  models: string[];
  anchor?: string;
  /** Calibration data for activations (and evaluation unless evalData is given). */
  data?: DataArg;
  /** Data to evaluate parents/vanilla/fused on (default: data). */
  evalData?: DataArg;
  recipe?: FuseRecipe;
  /** Output model path (default: inside the run folder). */
  output?: string;
  /** Parent folder for run folders (default `.otfuse/runs` in the current directory). */
  runsDir?: string;
  skipEval?: boolean;
  evalLimit?: number;
  provider?: ProviderChoice;
  /** Also finetune the fused model as a stage of the run. */
  finetune?: FinetuneOptions & { data: DataArg; evalData?: DataArg };
}

export interface LayerMapInfo {
  /** Aligned group name, e.g. 'blocks.0.mlp.fc1'. */
  name: string;
  kind: string;
  /** Rows (other model's neurons) × cols (anchor's neurons). */
  rows: number;
  cols: number;
  /** Which other model (index into models) this map aligns onto the anchor. */
  model: number;
  /** Key of the map in maps.safetensors. */
  tensor: string;
  diagnostics: Record<string, number>;
}

export interface ModelMetrics {
  label: string;
  file?: string;
  accuracy?: number;
  loss?: number;
}

/** run.json */
export interface RunRecord {
  id: string;
  name: string;
  status: 'running' | 'done' | 'failed' | 'cancelled';
  createdAt: string;
  recipe: FuseRecipe;
  models: string[];
  anchor: string;
  fusedModel: string;
  versions: Record<string, string>;
  provider?: ProviderReport;
  timings: Record<string, number>;
  /** parents, vanilla, ot, ot+finetune */
  metrics: ModelMetrics[];
  layers: LayerMapInfo[];
  mapsFile?: string;
  finetune?: FinetuneResult;
  error?: ErrorInfo;
  /** The calibration data and the evaluation data the metrics were measured on (so a later finetune or
   * re-evaluation can measure on the same set). Optional: the VS Code extension fills them in when missing. */
  data?: DataArg;
  evalData?: DataArg;
  /** Activation capture: forward passes, kept/candidate tokens per tensor geometry, peak bytes (per model). */
  capture?: { mode: 'all' | 'staged'; passes: number; seconds: number; cpuSeconds: number; tokenBudget: number; tokenSeed: number; tokens: { candidates: number; kept: number }[]; peakActivationBytes: number; peakCacheBytes: number };
  /** Peak resident set size of the process during the run (bytes). */
  peakRssBytes?: number;
}

export interface FuseResult {
  runDir: string;
  record: RunRecord;
}

export interface FinetuneOptions {
  epochs?: number;
  maxSteps?: number;
  batchSize?: number;
  lr?: number;
  weightDecay?: number;
  warmupSteps?: number;
  labelSmoothing?: number;
  clipNorm?: number;
  seed?: number;
  provider?: ProviderChoice;
  /** CPU threads for the training session (0/undefined = min(4, available cores)). */
  threads?: number;
  /** Which checkpoint ends up at `output`: the best eval accuracy (default when evalData is given) or the last. */
  keep?: 'best' | 'last';
  /** Evaluate on at most this many evalData samples. */
  evalLimit?: number;
  /** Also evaluate before the first step (reported as `initial`). */
  evalBefore?: boolean;
  /** Re-initialise the parameters first (train the architecture from scratch; uses `seed`). */
  reinitialize?: boolean;
}

export interface FinetuneRequest extends FinetuneOptions {
  model: string;
  data: DataArg;
  evalData?: DataArg;
  output: string;
}

export interface FinetuneResult {
  output: string;
  steps: number;
  epochs: number;
  seconds: number;
  samplesPerSecond: number;
  history: { step: number; loss: number; lr: number }[];
  evals: { epoch: number; accuracy: number; loss: number }[];
  best?: { epoch: number; accuracy: number };
  /** Evaluation before the first step (when evalBefore is set). */
  initial?: { accuracy: number; loss: number };
  /** Training-set accuracy and mean loss over the steps of each epoch (as the model was while training). */
  train?: { epoch: number; accuracy: number; loss: number }[];
  /** Peak resident memory of the process during the run (MiB). */
  peakRssMiB?: number;
}
