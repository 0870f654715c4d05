// Fusion recipes from one definition: RECIPE_FIELDS (built from the option registries) gives the JSON schema
// (recipe.schema.json is generated from it: `node scripts/gen-recipe-schema.mjs`; a test checks it is current),
// the validator (ajv compiles that same schema; errors name the field), the defaults, and the CLI flags and
// usage text (worker/cli.ts). Presets sit between the defaults and the user's explicit fields.
import Ajv, { type ErrorObject } from 'ajv';
import { OtfuseError } from '../errors';
import type { FuseRecipe } from '../types';
import type { OutNorm } from './maps';
import { PRESETS, type PresetName } from './presets';
import {
  ALIGN_BY,
  COST_NORMS,
  FORBIDDEN_KEYS,
  GROUND_METRICS,
  QK_MODES,
  REFITS,
  REFIT_MIXES,
  RESIDUAL_POLICIES,
  SOLVERS,
  TOKEN_FILTERS,
  namesOf,
  type AlignBy,
  type MetricKind,
  type Normalisation,
  type OtSolverName,
  type QkMode,
  type RefitMode,
  type RefitMix,
  type ResidualPolicy,
  type TokenFilter,
} from './registry';
import { solverParams } from '../ot/solvers';

/**
 * Default cap on samples × tokens per captured tensor (chosen on the fixtures, see BENCHMARKS.md "Scale"): the
 * bundled fixtures stay below it (200 × 17 ViT tokens, 200 × ≤ 64 BERT tokens), 200 ViT-B images (39,400 tokens)
 * are subsampled to it.
 */
export const DEFAULT_TOKEN_BUDGET = 8192;
/** The smallest non-zero token budget: with fewer activation rows the OT cost and the refit's Gram matrices are
 * too poorly determined (bundled ViT pair, default recipe, 2,000 Fashion-MNIST test images: budget 1 → 10.00 %,
 * 8 → 37.50 %, 32 → 68.25 %, 64 → 81.35 %, 256 → 82.85 %, 1,024 → 82.90 %, no cap → 83.50 %; 256 was fixed before
 * this was measured, and nothing was selected on it). */
export const MIN_TOKEN_BUDGET = 256;
/** Default seed of the token subsample. */
export const DEFAULT_TOKEN_SEED = 0;

export interface ResolvedRecipe {
  name: string;
  alignBy: AlignBy;
  solver: OtSolverName;
  reg: number;
  groundMetric: MetricKind;
  costNorm: Normalisation;
  residualPolicy: ResidualPolicy;
  qk: QkMode;
  samples: number;
  tokenFilter: TokenFilter;
  tokenBudget: number;
  tokenSeed: number;
  mapsDtype: 'F32' | 'F16';
  standardize: boolean;
  weights?: number[];
  anchorWeight?: number;
  headAware: boolean;
  preset: PresetName;
  refit: RefitMode;
  refitRidge: number;
  refitMix: RefitMix;
  /** How output-side values are averaged onto anchor neurons (see maps.ts). */
  outNorm: OutNorm;
  /** Samples per activation batch (the reference feeds one at a time). */
  batchSize: number;
  /** Round the cost matrix to float32 before Sinkhorn, as the reference's torch/POT pipeline does. */
  float32Cost: boolean;
  /** Where large cost Gram products run: ONNX Runtime (float32, fast) or float64 JS (bit-exact groundMetric). */
  costEngine: 'ort' | 'js';
  /** Activation capture: every tensor in one pass ('all'), one stage at a time ('staged'), or 'staged' only when
   * all at once would exceed ~512 MiB per model ('auto'). */
  capture: 'auto' | 'all' | 'staged';
  /** Where OT solvers with an ONNX Runtime path run: 'js' (default; bit-exact POT parity) or 'ort' (ONNX Runtime on
   * the CPU). A GPU provider (--provider cuda|webgpu) always sends them to ONNX Runtime on that provider. */
  otBackend: 'js' | 'ort';
  mergeLayers?: number;
  pareto: boolean;
}

/** A recipe field: its JSON-schema type, default, description and (optionally) its `otfuse fuse` flag. */
export type RecipeField =
  | { type: 'enum'; values: readonly string[]; default: string; description: string; flag?: string; valueDescriptions?: Record<string, string> }
  | {
      type: 'number';
      integer?: boolean;
      minimum?: number;
      exclusiveMinimum?: number;
      /** Every numeric field has an upper bound (a value past it is a usage error before any work). */
      maximum?: number;
      /** 0 is allowed besides [minimum, maximum] (e.g. tokenBudget 0 = no cap). */
      zeroAllowed?: boolean;
      default?: number;
      description: string;
      flag?: string;
    }
  | { type: 'boolean'; default: boolean; description: string; flag?: string }
  | { type: 'string'; default?: string; description: string; flag?: string }
  | { type: 'numberArray'; minItems: number; itemMinimum: number; description: string; flag?: string; example: string };

const enumOf = (table: Record<string, { description: string }>, def: string, description: string, flag: string): RecipeField => ({
  type: 'enum',
  values: namesOf(table),
  default: def,
  description,
  flag,
  valueDescriptions: Object.fromEntries(Object.entries(table).map(([k, v]) => [k, v.description])),
});
const described = (table: Record<string, string>) => Object.fromEntries(Object.entries(table).map(([k, v]) => [k, { description: v }]));

// Presets (named partial recipes under the user's explicit fields) live in the import-free presets.ts, with the
// choices the editor offers; their values must be recipe fields.
export { PRESETS, type PresetName };
void (PRESETS satisfies Record<string, { description: string; values: Partial<ResolvedRecipe> }>);

/** Upper bounds of the solver parameters as recipe fields (reg: the cost is normalised to ≤ 1, so a larger
 * regularisation only gives the uniform plan). */
const SOLVER_PARAM_MAXIMUM: Record<string, number> = { reg: 100 };

/** The solver parameters' names, from the solver registry's type (one recipe field each). */
type SolverParamName = { [K in OtSolverName]: keyof (typeof SOLVERS)[K]['params'] }[OtSolverName];

const SOLVER_PARAM_FIELDS = Object.fromEntries(
  Object.entries(solverParams()).map(([k, p]) => [
    k,
    {
      type: 'number',
      exclusiveMinimum: p.exclusiveMinimum,
      minimum: p.minimum,
      maximum: SOLVER_PARAM_MAXIMUM[k],
      default: p.default,
      description: p.description,
      flag: k,
    } satisfies RecipeField,
  ]),
) as Record<SolverParamName, RecipeField>;

/** Every recipe field, in the order the schema, the usage text and the docs list them. */
const RECIPE_FIELD_TABLE = {
  $schema: { type: 'string', description: 'Path or URL of this schema (editor support).' },
  name: { type: 'string', default: 'fusion', description: 'Run name (part of the run folder name).', flag: 'name' },
  alignBy: enumOf(ALIGN_BY, 'acts', 'Cost from activations on calibration data, or from (input-aligned, L2-normalised) weights.', 'align-by'),
  solver: enumOf(SOLVERS, 'sinkhorn', 'Exact OT (EMD) or entropic OT (Sinkhorn).', 'solver'),
  ...SOLVER_PARAM_FIELDS,
  groundMetric: enumOf(described(GROUND_METRICS), 'euclidean', 'Ground metric between neuron descriptions.', 'metric'),
  costNorm: enumOf(described(COST_NORMS), 'max', 'Cost normalisation before OT.', 'cost-norm'),
  residualPolicy: enumOf(RESIDUAL_POLICIES, 'mean', 'How the map after a residual Add combines the skip and branch maps.', 'residual'),
  qk: enumOf(QK_MODES, 'separate', 'Q/K maps: one OT each, one OT on Q|K neurons together, or one map from Q and K together used for both.', 'qk'),
  // ≥ 2, the one domain (schema, CLI, editor form, and activations.ts's refusal of a data set with fewer): one
  // sample has no spread, so per-neuron standardisation and an activation cost are undefined.
  samples: {
    type: 'number',
    integer: true,
    minimum: 2,
    maximum: 1_000_000,
    default: 200,
    description:
      'Calibration samples for activations (at most: a capture passes the first n whose (sample, token) pairs reach twice the token budget, when fewer suffice).',
    flag: 'samples',
  },
  tokenFilter: enumOf(TOKEN_FILTERS, 'all', 'Which tokens count as activation samples.', 'token-filter'),
  tokenBudget: {
    type: 'number',
    integer: true,
    minimum: MIN_TOKEN_BUDGET,
    maximum: 2 ** 31 - 1,
    zeroAllowed: true,
    default: DEFAULT_TOKEN_BUDGET,
    description: `Cap on activation samples × tokens per tensor (a seeded random subset beyond it; 0 = no cap, otherwise at least ${MIN_TOKEN_BUDGET}).`,
    flag: 'token-budget',
  },
  tokenSeed: { type: 'number', integer: true, minimum: 0, maximum: 2 ** 31 - 1, default: 0, description: 'Seed of the token subsample.', flag: 'token-seed' },
  mapsDtype: {
    type: 'enum',
    values: ['F32', 'F16'],
    default: 'F32',
    description: 'Element type of maps.safetensors: F32, or F16 (half the size; at most 4.9e-4 relative error per entry).',
    flag: 'maps-dtype',
  },
  standardize: { type: 'boolean', default: true, description: 'Per-neuron standardisation of activations.', flag: 'standardize' },
  headAware: {
    type: 'boolean',
    default: false,
    description:
      'Head-aware attention maps: heads matched as units (one assignment for Q, K and V), one map shared by Q and K inside each head (QKᵀ preserved exactly with EMD).',
    flag: 'head-aware',
  },
  weights: {
    type: 'numberArray',
    minItems: 2,
    itemMinimum: 0,
    description: 'Weights α per model, anchor first (default uniform).',
    flag: 'weights',
    example: '0.5,0.5',
  },
  anchorWeight: {
    type: 'number',
    exclusiveMinimum: 0,
    maximum: 1,
    description:
      "The anchor's weight α₀ when 'weights' is not given; the other parents share 1 − α₀ equally (default: uniform). Non-IID parents (bench/quality/noniid.md): 0.7 keeps the anchor's lead on its own classes while the refit still fits the other parents' outputs.",
    flag: 'anchor-weight',
  },
  refit: enumOf(
    REFITS,
    'regmean',
    "After alignment, refit every aligned linear layer in closed form from calibration activations (beyond the paper; default regmean: 32.8 % → 82.2 % one-shot on the bundled ViT pair, see BENCHMARKS.md). none = the paper's plain average.",
    'refit',
  ),
  refitRidge: {
    type: 'number',
    minimum: 0,
    maximum: 1e6,
    default: 0.01,
    description:
      'Ridge of the refit towards plain averaging, relative to the mean diagonal of the input Gram matrix (λ = refitRidge · mean diag; large values give plain averaging). 0.01 was best on validation data for the bundled pair.',
    flag: 'refit-ridge',
  },
  refitMix: enumOf(
    REFIT_MIXES,
    'uniform',
    "Per calibration sample, how much each parent's output counts in the refit's targets (regmean: also in its input Gram). Non-IID parents (bench/quality/noniid.md): the parent that knows an input best can lead the fit there.",
    'refit-mix',
  ),
  mergeLayers: {
    type: 'number',
    integer: true,
    minimum: 0,
    maximum: 10_000,
    description:
      "Partial fusion: fuse the embeddings and the first K blocks only; each parent's remaining blocks and head run as parallel branches on that shared trunk, logits averaged, in one ONNX graph. With calibration data each branch starts with a linear map fitted from the trunk's stream to that parent's own, and the trunk (the fused blocks, the anchor's own, or one refit for every parent) is chosen on held-out calibration samples; without, a non-anchor branch starts with its transport map at the cut, transposed. Absent or K = number of blocks: plain fusion; 0: nothing shared (the parents' logit ensemble). Not exportable to Hugging Face.",
    flag: 'merge-layers',
  },
  pareto: {
    type: 'boolean',
    default: false,
    description:
      'Build and evaluate the partial model for every K (0 … blocks) on the evaluation data: accuracy and parameter count per K in run.json (partial.points).',
    flag: 'pareto',
  },
  preset: enumOf(
    Object.fromEntries(Object.entries(PRESETS).map(([k, v]) => [k, { description: v.description }])),
    'default',
    'A named partial recipe under the explicit fields.',
    'preset',
  ),
} satisfies Record<string, RecipeField>;
export const RECIPE_FIELDS: Record<string, RecipeField> = RECIPE_FIELD_TABLE;

// Compile-time check: FuseRecipe (worker/types.ts) and RECIPE_FIELDS name the same fields.
type SameKeys<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never]
  ? true
  : { missing: Exclude<keyof A, keyof B>; extra: Exclude<keyof B, keyof A> };
const _fieldsMatch: SameKeys<Required<FuseRecipe>, typeof RECIPE_FIELD_TABLE> = true;
void _fieldsMatch;

const INTERNAL_DEFAULTS = { outNorm: 'rows', batchSize: 50, float32Cost: false, costEngine: 'ort', capture: 'auto', otBackend: 'js' } as const;

function fieldDefaults(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(RECIPE_FIELDS)) if ('default' in f && f.default !== undefined) out[k] = f.default;
  return out;
}

export const DEFAULTS = { ...fieldDefaults(), ...INTERNAL_DEFAULTS } as unknown as ResolvedRecipe;

export function resolveRecipe(recipe: FuseRecipe = {}): ResolvedRecipe {
  validateRecipe(recipe);
  const preset = recipe.preset ?? 'default';
  const explicit = Object.fromEntries(Object.entries(recipe).filter(([k, v]) => v !== undefined && k !== '$schema')) as Partial<ResolvedRecipe>;
  return { ...DEFAULTS, ...PRESETS[preset].values, ...explicit, preset } as ResolvedRecipe;
}

/** The recipe's JSON Schema (draft-07), generated from RECIPE_FIELDS. recipe.schema.json is this, pretty-printed. */
export function recipeSchema(): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(RECIPE_FIELDS)) {
    const p: Record<string, unknown> = {};
    switch (f.type) {
      case 'enum':
        p.enum = [...f.values];
        break;
      case 'number':
        p.type = f.integer ? 'integer' : 'number';
        if (f.minimum !== undefined) p.minimum = f.minimum;
        if (f.exclusiveMinimum !== undefined) p.exclusiveMinimum = f.exclusiveMinimum;
        if (f.maximum !== undefined) p.maximum = f.maximum;
        if (f.zeroAllowed) {
          // 0 or [minimum, maximum]
          const range = { minimum: p.minimum, maximum: p.maximum };
          delete p.minimum;
          delete p.maximum;
          p.anyOf = [{ const: 0 }, range];
        }
        break;
      case 'boolean':
        p.type = 'boolean';
        break;
      case 'string':
        p.type = 'string';
        break;
      case 'numberArray':
        p.type = 'array';
        p.items = { type: 'number', minimum: f.itemMinimum };
        p.minItems = f.minItems;
        break;
    }
    if ('default' in f && f.default !== undefined && k !== 'name') p.default = f.default;
    let description = f.description;
    if (f.type === 'enum' && f.valueDescriptions)
      description +=
        ' ' +
        Object.entries(f.valueDescriptions)
          .map(([v, d]) => `${v}: ${d}`)
          .join('; ') +
        '.';
    p.description = description;
    properties[k] = p;
  }
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://otfuse.dev/schemas/recipe.schema.json',
    title: 'otfuse fusion recipe',
    description:
      'Everything an OT fusion run needs besides the models and data. Command-line flags override these fields. Generated from worker/fusion/recipe.ts (node scripts/gen-recipe-schema.mjs).',
    type: 'object',
    additionalProperties: false,
    properties,
  };
}

let compiled: ReturnType<Ajv['compile']> | undefined;
function schemaValidator() {
  compiled ??= new Ajv({ allErrors: false, strict: true, verbose: true }).compile(recipeSchema());
  return compiled;
}

function describeError(e: ErrorObject): string {
  // '/weights/1' → 'weights[1]'
  const parts = e.instancePath.split('/').slice(1);
  const field = parts.length
    ? parts[0] +
      parts
        .slice(1)
        .map((p) => `[${p}]`)
        .join('')
    : '';
  const f = RECIPE_FIELDS[parts[0] ?? ''];
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      return `unknown field '${key}' (allowed: ${Object.keys(RECIPE_FIELDS)
        .filter((k) => k !== '$schema')
        .join(', ')})`;
    }
    case 'enum':
      return `field '${field}' must be one of ${(e.params as { allowedValues: string[] }).allowedValues.join(', ')}`;
    case 'type': {
      const t = (e.params as { type: string }).type;
      if (!field) return 'must be a JSON object';
      if (t === 'boolean') return `field '${field}' must be true or false`;
      if (t === 'integer') return `field '${field}' must be an integer`;
      if (t === 'array' && f?.type === 'numberArray') return `field '${field}' must be an array of at least ${f.minItems} numbers`;
      return `field '${field}' must be a ${t}`;
    }
    case 'minItems':
      return `field '${field}' must be an array of at least ${(e.params as { limit: number }).limit} numbers`;
    case 'minimum':
      return `field '${field}' must be ≥ ${(e.params as { limit: number }).limit}`;
    case 'exclusiveMinimum':
      return `field '${field}' must be > ${(e.params as { limit: number }).limit}`;
    case 'maximum':
      return `field '${field}' must be ≤ ${(e.params as { limit: number }).limit}`;
    case 'anyOf':
    case 'const':
      if (f?.type === 'number' && f.zeroAllowed) return `field '${field}' must be 0 or in [${f.minimum}, ${f.maximum}]`;
      return `field '${field}' ${e.message ?? 'is invalid'}`;
    default:
      return `field '${field}' ${e.message ?? 'is invalid'}`;
  }
}

/** Throws BAD_USAGE naming the first bad field; returns the recipe typed when it is valid. */
export function validateRecipe(obj: unknown, file?: string): FuseRecipe {
  const fail = (msg: string): never => {
    throw new OtfuseError('BAD_USAGE', `recipe: ${msg}`, { file });
  };
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) fail('must be a JSON object');
  const rec = obj as Record<string, unknown>;
  for (const key of Object.keys(rec)) if (FORBIDDEN_KEYS.has(key)) fail(`forbidden field '${key}'`);
  if (Object.getPrototypeOf(rec) !== Object.prototype && Object.getPrototypeOf(rec) !== null) fail('must be a plain JSON object');
  // Fields set to undefined (programmatic callers) count as absent.
  const defined = Object.fromEntries(Object.entries(rec).filter(([, v]) => v !== undefined));
  const validate = schemaValidator();
  if (!validate(defined)) {
    const e = validate.errors![0];
    let msg = describeError(e);
    if (e.keyword === 'enum') msg += ` (got '${String(e.data)}')`;
    fail(msg);
  }
  for (const [k, v] of Object.entries(defined)) {
    if (typeof v === 'number' && !Number.isFinite(v)) fail(`field '${k}' must be a number`);
    if (Array.isArray(v))
      v.forEach((x, i) => {
        if (typeof x === 'number' && !Number.isFinite(x)) fail(`field '${k}[${i}]' must be a number`);
      });
  }
  if (Array.isArray(defined.weights) && (defined.weights as number[]).reduce((a, b) => a + b, 0) <= 0) fail(`field 'weights' must not sum to 0`);
  return obj as FuseRecipe;
}

/** The per-parent weights α of a fusion of `n` models: `weights` when given, else the anchor's `anchorWeight` and the
 * rest shared equally, else uniform. */
export function parentWeights(recipe: Pick<ResolvedRecipe, 'weights' | 'anchorWeight'>, n: number): number[] {
  if (recipe.weights) return recipe.weights;
  const a = recipe.anchorWeight;
  if (a === undefined || n < 2) return new Array<number>(n).fill(1 / n);
  return Array.from({ length: n }, (_, i) => (i === 0 ? a : (1 - a) / (n - 1)));
}

/** The `otfuse fuse` recipe flags: flag → field, derived from RECIPE_FIELDS. */
export function recipeFlags(): { flag: string; field: string; spec: RecipeField }[] {
  return Object.entries(RECIPE_FIELDS)
    .filter(([, f]) => f.flag)
    .map(([field, spec]) => ({ flag: spec.flag!, field, spec }));
}

/** One usage token per recipe flag, e.g. `[--solver emd|sinkhorn]`. */
export function recipeUsage(): string[] {
  return recipeFlags().map(({ flag, spec }) => {
    switch (spec.type) {
      case 'enum':
        return `[--${flag} ${spec.values.join('|')}]`;
      case 'boolean':
        return `[--${spec.default ? 'no-' : ''}${flag}]`;
      case 'number':
        return `[--${flag} ${spec.default ?? 'N'}]`;
      case 'numberArray':
        return `[--${flag} ${spec.example}]`;
      case 'string':
        return `[--${flag} ${flag.toUpperCase()}]`;
    }
  });
}

/** recipe.schema.json's exact text (what scripts/gen-recipe-schema.mjs writes; a test compares). */
export function recipeSchemaText(): string {
  return JSON.stringify(recipeSchema(), null, 2) + '\n';
}

// The import-free mirror of the preset names in worker/types.ts must equal PRESETS' keys.
const _presetMirror: [PresetName] extends [import('../types').PresetName] ? ([import('../types').PresetName] extends [PresetName] ? true : false) : false =
  true;
void _presetMirror;
