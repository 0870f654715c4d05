// Fusion recipes: defaults (the reference's best settings), presets, and a small hand-written validator that
// checks a parsed JSON recipe against recipe.schema.json's rules and names the bad field.
import { OtfuseError } from '../errors';
import type { FuseRecipe } from '../types';
import type { OutNorm } from './maps';
import { DEFAULT_TOKEN_BUDGET } from './activations';

export interface ResolvedRecipe {
  name: string;
  alignBy: 'acts' | 'wts';
  solver: 'emd' | 'sinkhorn';
  reg: number;
  groundMetric: 'euclidean' | 'sqeuclidean' | 'cosine';
  costNorm: 'max' | 'median' | 'mean' | 'none';
  residualPolicy: 'no_resid' | 'only_resid' | 'mean' | 'weighted_scalar' | 'weighted_matrix';
  qk: 'separate' | 'joint' | 'eq_t_map';
  samples: number;
  tokenFilter: 'all' | 'cls' | 'window';
  tokenBudget: number;
  tokenSeed: number;
  mapsDtype: 'F32' | 'F16';
  standardize: boolean;
  weights?: number[];
  headAware: boolean;
  preset: 'default' | 'reference' | 'exact' | 'weights';
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
}

const DEFAULTS: ResolvedRecipe = {
  name: 'fusion', alignBy: 'acts', solver: 'sinkhorn', reg: 0.08, groundMetric: 'euclidean', costNorm: 'max',
  residualPolicy: 'mean', qk: 'separate', headAware: false, samples: 200, tokenFilter: 'all', tokenBudget: DEFAULT_TOKEN_BUDGET, tokenSeed: 0, mapsDtype: 'F32', standardize: true, preset: 'default',
  outNorm: 'rows', batchSize: 50, float32Cost: false, costEngine: 'ort', capture: 'auto',
};

/** Preset values sit between the defaults and the user's explicit fields. */
const PRESETS: Record<ResolvedRecipe['preset'], Partial<ResolvedRecipe>> = {
  default: {},
  // graldij/transformer-fusion as run for the fixtures: acts, Sinkhorn 0.08, separate Q/K, n·P scaling on both
  // sides, all tokens, per-neuron standardisation, samples one at a time.
  reference: { alignBy: 'acts', solver: 'sinkhorn', reg: 0.08, qk: 'separate', residualPolicy: 'mean', outNorm: 'rows', batchSize: 1, float32Cost: true, tokenFilter: 'all', tokenBudget: 0, standardize: true },
  // Hard alignment: exact OT, heads matched as units with one map shared by Q and K inside each head.
  exact: { solver: 'emd', qk: 'eq_t_map', headAware: true },
  // Weight-based alignment (no activations needed), Sinkhorn 0.06 as the paper uses for weights.
  weights: { alignBy: 'wts', solver: 'sinkhorn', reg: 0.06 },
};

export function resolveRecipe(recipe: FuseRecipe = {}): ResolvedRecipe {
  validateRecipe(recipe);
  const preset = recipe.preset ?? 'default';
  const explicit = Object.fromEntries(Object.entries(recipe).filter(([, v]) => v !== undefined)) as Partial<ResolvedRecipe>;
  return { ...DEFAULTS, ...PRESETS[preset], ...explicit, preset } as ResolvedRecipe;
}

type Rule = { type: 'string'; enum?: string[] } | { type: 'number'; min?: number; exclusiveMin?: number; integer?: boolean } | { type: 'boolean' } | { type: 'numberArray'; min?: number };

/** The same rules as recipe.schema.json (kept side by side; a test checks they agree). */
export const RECIPE_RULES: Record<string, Rule> = {
  name: { type: 'string' },
  alignBy: { type: 'string', enum: ['acts', 'wts'] },
  solver: { type: 'string', enum: ['emd', 'sinkhorn'] },
  reg: { type: 'number', exclusiveMin: 0 },
  groundMetric: { type: 'string', enum: ['euclidean', 'sqeuclidean', 'cosine'] },
  costNorm: { type: 'string', enum: ['max', 'median', 'mean', 'none'] },
  residualPolicy: { type: 'string', enum: ['no_resid', 'only_resid', 'mean', 'weighted_scalar', 'weighted_matrix'] },
  qk: { type: 'string', enum: ['separate', 'joint', 'eq_t_map'] },
  samples: { type: 'number', integer: true, min: 1 },
  tokenFilter: { type: 'string', enum: ['all', 'cls', 'window'] },
  tokenBudget: { type: 'number', integer: true, min: 0 },
  tokenSeed: { type: 'number', integer: true, min: 0 },
  mapsDtype: { type: 'string', enum: ['F32', 'F16'] },
  standardize: { type: 'boolean' },
  headAware: { type: 'boolean' },
  weights: { type: 'numberArray', min: 0 },
  preset: { type: 'string', enum: ['default', 'reference', 'exact', 'weights'] },
  $schema: { type: 'string' },
};

/** Throws BAD_USAGE naming the first bad field; returns the recipe typed when it is valid. */
export function validateRecipe(obj: unknown, file?: string): FuseRecipe {
  const fail = (msg: string): never => { throw new OtfuseError('BAD_USAGE', `recipe: ${msg}`, { file }); };
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) fail('must be a JSON object');
  for (const [key, value] of Object.entries(obj as Record<string, unknown>)) {
    const rule = RECIPE_RULES[key];
    if (!rule) fail(`unknown field '${key}' (allowed: ${Object.keys(RECIPE_RULES).filter((k) => k !== '$schema').join(', ')})`);
    if (value === undefined) continue;
    switch (rule.type) {
      case 'string':
        if (typeof value !== 'string') fail(`field '${key}' must be a string`);
        if (rule.enum && !rule.enum.includes(value as string)) fail(`field '${key}' must be one of ${rule.enum.join(', ')} (got '${value}')`);
        break;
      case 'boolean':
        if (typeof value !== 'boolean') fail(`field '${key}' must be true or false`);
        break;
      case 'number':
        if (typeof value !== 'number' || !Number.isFinite(value)) fail(`field '${key}' must be a number`);
        if (rule.integer && !Number.isInteger(value)) fail(`field '${key}' must be an integer`);
        if (rule.min !== undefined && (value as number) < rule.min) fail(`field '${key}' must be ≥ ${rule.min}`);
        if (rule.exclusiveMin !== undefined && (value as number) <= rule.exclusiveMin) fail(`field '${key}' must be > ${rule.exclusiveMin}`);
        break;
      case 'numberArray':
        if (!Array.isArray(value) || value.length < 2) fail(`field '${key}' must be an array of at least 2 numbers`);
        (value as unknown[]).forEach((v, i) => {
          if (typeof v !== 'number' || !Number.isFinite(v)) fail(`field '${key}[${i}]' must be a number`);
          if (rule.min !== undefined && (v as number) < rule.min) fail(`field '${key}[${i}]' must be ≥ ${rule.min}`);
        });
        if ((value as number[]).reduce((a, b) => a + b, 0) <= 0) fail(`field '${key}' must not sum to 0`);
        break;
    }
  }
  return obj as FuseRecipe;
}
