// The engine's public data types: requests, results, progress events and the run record (run.json).
// The extension, the CLI and the webview read only these shapes.
import type { DatasetSpec } from './data/dataset';
import type { ErrorInfo } from './errors';
import type { ProviderChoice, ProviderReport } from './runtime/providers';
import type { ModelSummary } from './onnx/model';
import type { AlignBy, MetricKind, Normalisation, OtSolverName, QkMode, RefitMode, ResidualPolicy, TokenFilter } from './fusion/registry';
import type { PresetName } from './fusion/recipe';

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

// Option unions derive from the registries (worker/fusion/registry.ts, worker/ot/solvers.ts).
export type OtSolver = OtSolverName;
export type { AlignBy, ResidualPolicy, QkMode, TokenFilter, RefitMode, MetricKind, Normalisation };

/** Everything a fusion run needs (also the JSON recipe's shape; flags override it). Field docs, defaults and
 * allowed values: RECIPE_FIELDS in worker/fusion/recipe.ts (and the generated recipe.schema.json). */
export interface FuseRecipe {
  $schema?: string;
  name?: string;
  alignBy?: AlignBy;
  solver?: OtSolver;
  /** Sinkhorn regularisation (a solver parameter, see worker/ot/solvers.ts). */
  reg?: number;
  groundMetric?: MetricKind;
  costNorm?: Normalisation;
  residualPolicy?: ResidualPolicy;
  qk?: QkMode;
  /** Activation samples used for the cost (default 200). */
  samples?: number;
  tokenFilter?: TokenFilter;
  standardize?: boolean;
  /** Weights α per model (anchor first); default uniform. */
  weights?: number[];
  /** A named partial recipe (worker/fusion/recipe.ts PRESETS). */
  preset?: PresetName;
  /** Head-aware attention maps: heads matched as units (one head assignment for Q, K and V), one map shared by
   * Q and K inside each head. With EMD, QKᵀ of every head is preserved exactly. */
  headAware?: boolean;
  /** Closed-form refit of the aligned linear layers from calibration activations (beyond the paper). */
  refit?: RefitMode;
  /** Ridge of the refit, relative to the mean diagonal of the summed input Gram matrix. */
  refitRidge?: number;
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
  /** Honest protocol: also report the parents' logit ensemble and, with `finetune`, every parent and the vanilla
   * average given the same finetune (adds rows to run.json's metrics). */
  baselines?: boolean | { seeds?: number };
  /** Pick the recipe by a budgeted sweep scored on a held-out slice of the calibration data (explicit recipe
   * fields are kept fixed). The CLI turns it on when no recipe flag is given. */
  autotune?: boolean | { budgetSeconds?: number };
}

/** One recipe tried by the auto-tune sweep. */
export interface AutotuneTrial {
  label: string;
  recipe: FuseRecipe;
  /** Accuracy and mean cross-entropy on the held-out calibration slice (absent when skipped). */
  accuracy?: number;
  loss?: number;
  seconds: number;
  /** Why the candidate was not scored (not implemented, not applicable, over budget). */
  skipped?: string;
}

/** run.json's record of the auto-tune sweep. */
export interface AutotuneRecord {
  chosen: FuseRecipe;
  chosenLabel: string;
  trials: AutotuneTrial[];
  /** Calibration samples the candidates were fused from, and how many were held out to score them. */
  fitSamples: number;
  heldOutSamples: number;
  score: 'held-out cross-entropy';
  budgetSeconds: number;
  seconds: number;
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
  /** With `seeds`: the mean over the finetune seeds. */
  accuracy?: number;
  loss?: number;
  /** Accuracy per finetune seed (baseline rows of an honest-protocol run) and their sample standard deviation. */
  seeds?: number[];
  sd?: number;
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
  /** The auto-tune sweep that chose the recipe (when the run was auto-tuned). */
  autotune?: AutotuneRecord;
  /** The calibration data and the evaluation data the metrics were measured on (so a later finetune or
   * re-evaluation can measure on the same set). Optional: the VS Code extension fills them in when missing. */
  data?: DataArg;
  evalData?: DataArg;
  /** Per-layer results of the alignment refit (recipe.refit ≠ 'none'): relative reconstruction error on the
   * calibration set with plain averaging and after the refit, and the ridge λ used. */
  refit?: { name: string; errorAverage: number; errorRefit: number; lambda: number; rows: number }[];
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
  reinitialize?: boolean;  /** Distillation: teacher models (ONNX) whose mean softened probabilities the model also learns from. */
  teachers?: string[];
  /** Distillation temperature T (default 2). */
  kdTemp?: number;
  /** Weight α of the distillation term: loss = (1−α)·CE + α·T²·KL (default 0.5). */
  kdAlpha?: number;
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
  peakRssMiB?: number;  /** The distillation setting used (when teachers were given). */
  distill?: { teachers: string[]; temperature: number; alpha: number };
}
