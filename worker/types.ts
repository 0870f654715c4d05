// The engine's public data types: requests, results, progress events and the run record (run.json).
// The extension, the CLI and the webview read only these shapes.
// This file imports nothing: the modules that implement these shapes import them from here (and re-export them).

export type ErrorCode =
  | 'BAD_USAGE' // wrong flags or arguments (CLI exit 2)
  | 'BAD_MODEL' // not ONNX, truncated, unsupported structure
  | 'BAD_DATA' // dataset unreadable or does not fit the model
  | 'UNSUPPORTED' // op or structure the engine cannot place
  | 'MISMATCH' // models that cannot be fused together
  | 'PROVIDER' // execution provider unavailable
  | 'NUMERIC' // NaN/Inf or diverging numbers
  | 'IO' // the file system refused: no space, read-only, permission denied, quota
  | 'CANCELLED'
  | 'WORKER_CRASHED'
  | 'INTERNAL';

export interface ErrorInfo {
  code: ErrorCode;
  message: string;
  file?: string;
  node?: string;
}

export type ProviderChoice = 'auto' | 'cpu' | 'cuda' | 'webgpu';
export type ProviderName = 'cpu' | 'cuda' | 'webgpu';

export interface ProviderReport {
  /** The provider that runs the sessions. */
  used: ProviderName;
  requested: ProviderChoice;
  /** One line per provider that was tried or skipped, e.g. "cuda: skipped (CUDA provider libraries not installed; …)". */
  reasons: string[];
}

/** How raw images become model inputs: x = (pixel / scale − mean[c]) / std[c], NCHW. */
export interface Preprocess {
  scale?: number;
  mean?: number[];
  std?: number[];
  /** Channel count for IDX images (grayscale = 1). */
  channels?: number;
}

/** What `--data` accepts: a path (.npz, .json spec, IDX images), or the spec object itself. */
export interface DatasetSpec extends Preprocess {
  path: string;
  /** IDX labels file (required for IDX images). */
  labels?: string;
  /** Use only the first `limit` samples (after `offset`). */
  limit?: number;
  offset?: number;
}

export interface ModelSummary {
  file: string;
  irVersion: number;
  opsets: Record<string, number>;
  producer: string;
  inputs: { name: string; type: string; shape: (number | string)[] }[];
  outputs: { name: string; type: string; shape: (number | string)[] }[];
  nodeCount: number;
  initializerCount: number;
  parameterCount: number;
  opHistogram: Record<string, number>;
  /** The model's metadata_props (otfuse writes its lineage there: see worker/runs/lineage.ts). */
  metadata?: Record<string, string>;
}

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
  /** Read-only views: describe the file without starting an ONNX Runtime session (no provider probe). */
  noSession?: boolean;
}

export interface InspectResult {
  summary: ModelSummary;
  /** Absent when the request asked for no session. */
  provider?: ProviderReport;
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
  /** Causal-LM text: perplexity = e^loss over the predicted next tokens (lower is better); accuracy is then
   * next-token accuracy. */
  perplexity?: number;
  samples: number;
  seconds: number;
  provider: ProviderReport;
}

// Option names. The registries are the source of truth (worker/fusion/registry.ts, worker/ot/solvers.ts,
// worker/fusion/recipe.ts PRESETS); these mirrors keep this file import-free (the webview type-checks it without
// Node), and a compile-time check in registry.ts fails the build when a mirror and its registry differ.
export type OtSolver = 'emd' | 'sinkhorn';
export type AlignBy = 'acts' | 'wts';
export type ResidualPolicy = 'no_resid' | 'only_resid' | 'mean' | 'weighted_scalar' | 'weighted_matrix';
export type QkMode = 'separate' | 'joint' | 'eq_t_map';
export type TokenFilter = 'all' | 'cls' | 'window';
export type RefitMode = 'none' | 'regmean' | 'regmean++';
export type RefitMix = 'uniform' | 'confidence' | 'label';
export type MetricKind = 'euclidean' | 'sqeuclidean' | 'cosine';
export type Normalisation = 'max' | 'median' | 'mean' | 'none';
export type PresetName = 'default' | 'reference' | 'exact' | 'paper' | 'weights';

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
  /** Cap on activation samples × tokens per tensor (a seeded random subset beyond it; 0 = no cap; default 8192). */
  tokenBudget?: number;
  /** Seed of that token subsample (default 0). */
  tokenSeed?: number;
  /** Element type of maps.safetensors: 'F32' (default) or 'F16' (half the size; ≤ 4.9e-4 relative error per entry). */
  mapsDtype?: 'F32' | 'F16';
  standardize?: boolean;
  /** Weights α per model (anchor first); default uniform. */
  weights?: number[];
  /** The anchor's weight α₀ when `weights` is not given; the other parents share 1 − α₀ equally (default: uniform). */
  anchorWeight?: number;
  /** A named partial recipe (worker/fusion/recipe.ts PRESETS). */
  preset?: PresetName;
  /** Head-aware attention maps: heads matched as units (one head assignment for Q, K and V), one map shared by
   * Q and K inside each head. With EMD, QKᵀ of every head is preserved exactly. */
  headAware?: boolean;
  /** Closed-form refit of the aligned linear layers from calibration activations (beyond the paper). */
  refit?: RefitMode;
  /** Ridge of the refit, relative to the mean diagonal of the summed input Gram matrix. */
  refitRidge?: number;
  /** Per calibration sample, how much each parent's output counts in the refit (default uniform: α everywhere). */
  refitMix?: RefitMix;
  /** Partial fusion (issue 28): share the fused embedding and first K blocks; each parent's other blocks and head
   * run as branches on that trunk, logits averaged. Absent: all blocks (plain fusion); 0: the parents' ensemble. */
  mergeLayers?: number;
  /** Also build and evaluate the partial model for every K (run.json `partial.points`). */
  pareto?: boolean;
}

export interface FuseRequest {
  /** Models to fuse; the anchor is `anchor` if given, else the first. 'auto' (AUTO_ANCHOR): the parent with the
   * lowest loss on the held-out calibration slice (worker/jobs/anchor.ts; recorded in run.json's anchorChoice). */
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
  /** User + system CPU seconds of the trial (this process), and its estimated cost before it ran (the budget's unit). */
  cpuSeconds?: number;
  estimate?: number;
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
  /** The budget, in estimated seconds (worker/jobs/trialcost.ts), and the estimates of the trials that ran. */
  budgetSeconds: number;
  estimatedSeconds?: number;
  /** Set when the wall-time guard (a safety stop) cut the sweep: what it did. */
  guard?: string;
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

/** What a metric row measured (code keys off this, never off the display label):
 * parent / anchor: a parent model as given (the anchor is the parent whose graph the fused model keeps);
 * vanilla: the plain average without alignment; fused: the OT-fused model; finetuned: the fused model after a
 * finetune; ensemble: the parents' logit ensemble; baseline: another model given the same finetune as the fused
 * one (`start` says which), the comparison the finetuned row is read against. */
/** `base` and `merged` are the rows of a same-base merge (otfuse merge): the shared base and the merged model. */
/** 'aligned': a non-anchor parent alone after alignment onto the anchor (weights one-hot), a diagnostic of how much
 * of it reached the fused model (issue 28). */
export type MetricRole = 'parent' | 'anchor' | 'vanilla' | 'fused' | 'finetuned' | 'ensemble' | 'baseline' | 'base' | 'merged' | 'aligned';

/** A data set as run.json records it: its path (relative to the run folder where possible), the sha256 of its
 * content (worker/runs/provenance.ts dataSha256) and how many samples were used. */
export interface DataRef {
  path: string;
  sha256: string;
  n: number;
}

export interface ModelMetrics {
  /** Display text only: never matched on (use role, start, model). */
  label: string;
  role: MetricRole;
  /** finetuned / baseline rows: the model the finetune started from. */
  start?: 'fused' | 'anchor' | 'parent' | 'vanilla';
  /** parent / anchor rows and baselines of a parent: index into RunRecord.models. */
  model?: number;
  /** The data this row was measured on. */
  data?: DataRef;
  file?: string;
  /** With `seeds`: the mean over the finetune seeds. */
  accuracy?: number;
  loss?: number;
  /** Causal-LM text: e^loss over the predicted next tokens (lower is better); accuracy is next-token accuracy. */
  perplexity?: number;
  /** Accuracy per finetune seed (baseline rows of an honest-protocol run) and their sample standard deviation. */
  seeds?: number[];
  sd?: number;
}

/** run.json */
/** One point of the partial-fusion curve: K shared blocks, the graph's parameter count, its evaluation. */
export interface PartialPoint {
  mergeLayers: number;
  parameters: number;
  accuracy?: number;
  loss?: number;
  /** 0 < K < layers, with calibration data: the trunk this point's model uses, chosen on held-out calibration rows. */
  trunk?: PartialTrunk;
  /** Every trunk tried at this K and its held-out score (the chosen one: `trunk`). */
  candidates?: PartialTrunkCandidate[];
}

/** The shared trunk of a partial model: the fused model's first K blocks, the anchor's own, or a trunk whose
 * residual-stream writers were refit so that every parent's upper blocks see the features they expect. */
export type PartialTrunk = 'fused' | 'anchor' | 'fitted';

export interface PartialTrunkCandidate {
  trunk: PartialTrunk;
  /** 'fitted': the trunk it started from. */
  from?: 'fused' | 'anchor';
  /** Mean KL(ensemble ‖ model) over the held-out calibration rows (the choice: lowest). */
  heldOutKl: number;
  /** Accuracy on the held-out calibration rows (labelled data only; not used for the choice). */
  heldOutAccuracy?: number;
  /** Stacked relative residual of the parents' streams at the cut, on the fitting rows. */
  residual: number;
}

export interface PartialRecord {
  /** K of fused.onnx (= layers for plain fusion). */
  mergeLayers: number;
  layers: number;
  /** Parameters of fused.onnx and of one parent (the anchor), for the size axis. */
  parameters: number;
  parentParameters: number;
  /** Every K, 0 … layers (with pareto); the chosen one is `mergeLayers`. Measured on the evaluation data. */
  points?: PartialPoint[];
  /** Each parent's own parameter count (index into RunRecord.models), for the parents' places on the size axis. */
  modelParameters?: number[];
  /** The trunk of fused.onnx (0 < K < layers with calibration data) and how it was chosen. */
  trunk?: PartialTrunk;
  candidates?: PartialTrunkCandidate[];
  /** The calibration rows the trunks were fitted on and scored on (the chosen trunk is refit on all `fit` + `heldOut`
   * rows when the held-out rows were the tail of the fusion's own samples). */
  heldOut?: { fit: number; heldOut: number; refitOnAll: boolean };
}

/** The automatic anchor (worker/jobs/anchor.ts): every parent's loss and accuracy on the held-out calibration
 * slice, and the one chosen (the lowest loss). */
export interface AnchorChoice {
  rule: string;
  heldOutSamples: number;
  chosen: string;
  parents: { model: string; loss: number; accuracy: number }[];
  /** The calibration file the scores were measured on (n = the held-out samples; `rule` names which ones). */
  measuredOn?: DataRef;
}

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
  /** Every finetune of the run's fused model, oldest first (the last one is `finetune`); a second finetune
   * appends here instead of overwriting. */
  finetunes?: FinetuneResult[];
  /** run.json's format version (worker/runs/schema.ts RUN_SCHEMA_VERSION); older records are migrated on read. */
  schemaVersion?: number;
  /** Token sequence length text data was evaluated at (the tokenizer's model_max_length unless --max-length). */
  maxLength?: number;
  /** Things the user must know about a run that still finished (a failed finetune stage, an OT solver that
   * stopped at its iteration cap). */
  warnings?: string[];
  /** The anchor finetuned with the same data and settings (the baseline the ot+finetune row is read against). */
  baselineFinetune?: FinetuneResult;
  error?: ErrorInfo;
  /** The auto-tune sweep that chose the recipe (when the run was auto-tuned). */
  autotune?: AutotuneRecord;
  /** How the anchor was chosen when the request asked for the automatic anchor (anchor 'auto'). */
  anchorChoice?: AnchorChoice;
  /** Partial fusion (recipe.mergeLayers / pareto): the chosen K and, with pareto, every K's point. */
  partial?: PartialRecord;
  /** The calibration data and the evaluation data the metrics were measured on (so a later finetune or
   * re-evaluation can measure on the same set). Optional: the VS Code extension fills them in when missing. */
  data?: DataArg;
  evalData?: DataArg;
  /** Per-layer results of the alignment refit (recipe.refit ≠ 'none'): relative reconstruction error on the
   * calibration set with plain averaging and after the refit, and the ridge λ used. */
  refit?: { name: string; errorAverage: number; errorRefit: number; lambda: number; rows: number }[];
  /** Activation capture: forward passes, kept/candidate tokens per tensor geometry, peak bytes (per model). */
  capture?: {
    mode: 'all' | 'staged';
    passes: number;
    seconds: number;
    cpuSeconds: number;
    /** Calibration samples passed through each model: fewer than the recipe's when its token budget keeps less than
     * 1 in CANDIDATES_PER_KEPT of their (sample, token) pairs (fusion/calibinputs.ts). */
    samples?: number;
    tokenBudget: number;
    tokenSeed: number;
    tokens: { candidates: number; kept: number }[];
    peakActivationBytes: number;
    peakCacheBytes: number;
  };
  /** Peak resident set size of the process during the run (bytes). */
  peakRssBytes?: number;
  /** True when no separate evaluation data was given and the metrics were measured on the calibration data:
   * then they are not a held-out result, and every view says so. */
  evalIsCalibration?: boolean;
  /** The parent model files with their sha256 (also in fused.onnx's metadata_props). */
  parents?: { file: string; sha256: string }[];
  /** A same-base merge run (`otfuse merge`): method, resolved parameters, base, seed (issue 30). */
  merge?: MergeRecord;
  /** Fuse only: the parents look like fine-tunes of one base (alignment is the identity; `merge` applies). */
  sharedBase?: SharedBaseReport;
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
  reinitialize?: boolean; /** Distillation: teacher models (ONNX) whose mean softened probabilities the model also learns from. */
  teachers?: string[];
  /** Distillation temperature T (default 2). */
  kdTemp?: number;
  /** Weight α of the distillation term: loss = (1−α)·CE + α·T²·KL (default 0.5). */
  kdAlpha?: number;
  /** GiB a training step may need (default: the machine's memory); a larger estimated floor is refused up front. */
  memoryLimit?: number;
  /** Partial models: epochs of trunk distillation before the finetune (train/trunkdistill.ts; default 160, 0 = off). */
  trunkEpochs?: number;
}

export interface FinetuneRequest extends FinetuneOptions {
  model: string;
  data: DataArg;
  evalData?: DataArg;
  output: string;
}

/** What a data file holds, for pickers: sample count and the arrays' per-sample shapes (or why it cannot be read). */
export interface DataDescription {
  path: string;
  size?: number;
  arrays?: { name: string; type: string; sampleShape: number[] }[];
  error?: string;
}

/** Finetune a run's fused model into the run (finetuned.onnx, an ot+finetune row and, with `baseline`, the
 * anchor finetuned the same way as the row that gives it meaning). */
export interface FinetuneRunRequest extends FinetuneOptions {
  runDir: string;
  data: DataArg;
  /** Default: the data the run was evaluated on. */
  evalData?: DataArg;
  /** Also finetune the anchor with the same data and settings ('anchor+finetune' row). */
  baseline?: boolean;
  /** Distillation teachers (model files), when the engine supports them. */
  teachers?: string[];
}

export interface FinetuneRunResult {
  runDir: string;
  record: RunRecord;
  finetune: FinetuneResult;
  baseline?: FinetuneResult;
}

/** Evaluate a run's models again; on the run's own evaluation data run.json's metrics are updated. */
export interface ReevaluateRunRequest {
  runDir: string;
  /** Default: the data the run was evaluated on. */
  data?: DataArg;
  limit?: number;
  provider?: ProviderChoice;
}

export interface ReevaluateRunResult {
  runDir: string;
  record: RunRecord;
  /** One per evaluated row (label and role of run.json's metrics). */
  results: (EvaluateResult & { label: string; role: MetricRole })[];
  /** Whether run.json was updated (the data was the run's own evaluation data). */
  updated: boolean;
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
  /** The distillation setting used (when teachers were given). */
  distill?: { teachers: string[]; temperature: number; alpha: number };
  /** A partial model's trunk distillation before the steps (train/trunkdistill.ts): mean squared error at the cut per
   * epoch, or why it was skipped. */
  trunkDistill?: { epochs: number; mse: number[]; seconds: number; skipped?: string };
  /** Provenance (run.json): the data trained on and measured on, and the settings (filled in by the run that
   * records the finetune). Teachers are file names. */
  trainData?: DataRef;
  evalData?: DataRef;
  lr?: number;
  seed?: number;
  teachers?: string[];
  /** When it was recorded, and the metric rows it produced (history entries). */
  at?: string;
  rows?: ModelMetrics[];
}

// Same-base merging (`otfuse merge`, worker/merge/). The registry (worker/merge/registry.ts) is the source of truth;
// this mirror keeps the file import-free, and a compile-time check there fails the build when they differ.
export type MergeMethodName = 'linear' | 'task_arithmetic' | 'ties' | 'dare_linear' | 'dare_ties' | 'slerp';

/** A merge method's parameters (which apply, their domains and defaults: MERGE_PARAMS / MERGE_METHODS). */
export interface MergeParams {
  /** One weight per merged model (not the base), each ≥ 0; default 1 each. */
  weights?: number[];
  /** Scale λ of the merged task vector. */
  lambda?: number;
  /** Fraction of each task vector's entries kept, in (0, 1]. */
  density?: number;
  /** SLERP position: 0 = the first model, 1 = the second. */
  t?: number;
  /** Seed of DARE's random drop mask. */
  seed?: number;
  /** Divide the mixed task vector by the summed weights (of the entries kept). */
  normalize?: boolean;
}

export interface MergeRequest {
  /** The models to merge (fine-tunes of `base`), two or more. */
  models: string[];
  /** The common base (pre-trained) model; required by the task-vector methods. */
  base?: string;
  method: MergeMethodName;
  params?: MergeParams;
  /** Output model: an .onnx file, or a Hugging Face folder when the inputs are HF folders (default: in the run folder). */
  output?: string;
  /** Replace an existing output folder (HF output). */
  force?: boolean;
  runsDir?: string;
  /** Evaluate every fine-tune, the base, the merged model and the ensemble on this data. */
  evalData?: DataArg;
  evalLimit?: number;
  provider?: ProviderChoice;
}

/** run.json's record of a merge. */
export interface MergeRecord {
  method: MergeMethodName;
  /** Every parameter of the method, resolved (defaults filled in). */
  params: MergeParams;
  base?: string;
  formula: string;
  /** Float initializers merged; other initializers (integer constants) are the template's. */
  tensors: number;
  constants: number;
  /** Tensors SLERP interpolated linearly because they were near-colinear (|cos| > 0.9995). */
  colinear?: number;
  /** The HF folder written (when the output is one). */
  hfOutput?: string;
}

export interface MergeResult {
  runDir: string;
  record: RunRecord;
  /** The merged model file (the run folder's merged.onnx, or the requested output). */
  output: string;
}

/** Shared-base detection (worker/merge/sharedBase.ts): per tensor, the relative distance between the parents
 * against the distance a random pairing of their entries gives. */
export interface SharedBaseReport {
  shared: boolean;
  /** The largest (worst) ratio ‖θ_A − θ_B‖ / E‖θ_A − π(θ_B)‖ over the tensors compared, and its tensor. */
  maxRatio: number;
  worstTensor: string;
  /** Median ratio over the tensors. */
  medianRatio: number;
  tensors: number;
  /** Shared when maxRatio ≤ threshold and medianRatio ≤ medianThreshold. */
  threshold: number;
  medianThreshold: number;
  /** Fuse: of the square transport maps, how many are the identity assignment (each row's largest entry on its
   * own index). Fine-tunes of one base should give (nearly) all. */
  identityMaps?: { maps: number; identity: number };
  /** The base model a parent's config names (`_name_or_path`), when found in the workspace. */
  base?: string;
  /** What a parent's config names as its base, found or not. */
  baseName?: string;
  message: string;
}
