// Every number a user can pass (CLI flag or engine request field), named once with its domain. The CLI checks
// flags at parse time and the engine checks requests on entry (the extension calls the engine directly), so a
// value outside its domain is a usage error (exit 2) before any work starts — never a silent wrong result.
import { OtfuseError } from './errors';
import { recipeFlags } from './fusion/recipe';

export interface NumberRule {
  integer?: boolean;
  min?: number;
  /** Strict lower bound. */
  above?: number;
  max?: number;
  /** Strict upper bound. */
  below?: number;
  /** 0 is allowed besides the range (e.g. 0 = no cap). */
  zeroAllowed?: boolean;
  what: string;
}

/** Keyed by CLI flag name. The recipe's numeric fields (samples, reg, token budget, …) have their ranges in their
 * registry (RECIPE_FIELDS, worker/fusion/recipe.ts; checked by validateRecipe): each range is written in one place. */
export const NUMBER_RULES: Record<string, NumberRule> = {
  'batch-size': { integer: true, min: 1, max: 1 << 20, what: 'samples per batch' },
  limit: { integer: true, min: 1, max: 2 ** 31 - 1, what: 'number of samples' },
  offset: { integer: true, min: 0, max: 2 ** 31 - 1, what: 'index of the first sample' },
  'eval-limit': { integer: true, min: 1, max: 2 ** 31 - 1, what: 'number of evaluation samples' },
  epochs: { above: 0, max: 1e6, what: 'epochs (fractions allowed)' },
  'max-steps': { integer: true, min: 1, max: 1e9, what: 'training steps' },
  'warmup-steps': { integer: true, min: 0, max: 1e9, what: 'warmup steps' },
  seed: { integer: true, min: 0, max: 2 ** 31 - 1, what: 'random seed' },
  lr: { above: 0, max: 1e3, what: 'learning rate' },
  'weight-decay': { min: 0, max: 1e3, what: 'weight decay' },
  'label-smoothing': { min: 0, below: 1, what: 'label smoothing' },
  'clip-norm': { min: 0, max: 1e6, what: 'gradient clipping norm (0 = off)' },
  scale: { above: 0, max: 1e6, what: 'pixel scale' },
  mean: { min: -1e6, max: 1e6, what: 'per-channel mean' },
  std: { above: 0, max: 1e6, what: 'per-channel standard deviation' },
  weights: { min: 0, what: 'model weight (the sum must be finite and positive)' },
  'autotune-budget': { min: 0, max: 86_400, what: 'seconds for the recipe search (0: the first candidate only)' },
  'kd-temp': { min: 0.05, max: 100, what: 'distillation temperature' },
  'kd-alpha': { min: 0, max: 1, what: 'weight of the distillation loss' },
  'max-length': { integer: true, min: 3, max: 65_536, what: 'tokens per text sample' },
  seeds: { integer: true, min: 1, max: 100, what: 'seeds per baseline' },
};

/** One rule per numeric recipe field with a CLI flag, from the recipe registry (for the ranges in the usage text). */
function recipeNumberRules(): Record<string, NumberRule> {
  const out: Record<string, NumberRule> = {};
  for (const { flag, spec } of recipeFlags()) {
    if (spec.type !== 'number') continue;
    out[flag] = {
      integer: spec.integer,
      min: spec.minimum,
      above: spec.exclusiveMinimum,
      max: spec.maximum,
      zeroAllowed: spec.zeroAllowed,
      what: spec.description,
    };
  }
  return out;
}

function describe(rule: NumberRule): string {
  const parts: string[] = [rule.zeroAllowed ? '0 or' : '', rule.integer ? 'an integer' : 'a finite number'].filter(Boolean);
  if (rule.min !== undefined) parts.push(`≥ ${rule.min}`);
  if (rule.above !== undefined) parts.push(`> ${rule.above}`);
  if (rule.max !== undefined) parts.push(`≤ ${rule.max}`);
  if (rule.below !== undefined) parts.push(`< ${rule.below}`);
  return parts.join(' ');
}

/** Checks one value against its flag's rule; returns it. */
export function checkNumber(flag: string, value: number, rule: NumberRule | undefined = NUMBER_RULES[flag]): number {
  if (rule?.zeroAllowed && value === 0) return value;
  const bad =
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    (rule?.integer && !Number.isSafeInteger(value)) ||
    (rule?.min !== undefined && value < rule.min) ||
    (rule?.above !== undefined && value <= rule.above) ||
    (rule?.max !== undefined && value > rule.max) ||
    (rule?.below !== undefined && value >= rule.below);
  if (bad) throw new OtfuseError('BAD_USAGE', `--${flag} must be ${rule ? describe(rule) : 'a finite number'}${rule ? ` (${rule.what})` : ''}; got ${value}`);
  return value;
}

export function checkOptional(flag: string, value: number | undefined): void {
  if (value !== undefined) checkNumber(flag, value);
}

/** Model weights: each ≥ 0, and a finite positive sum (so normalising them cannot overflow or divide by 0). */
export function checkWeights(weights: number[] | undefined, flag = 'weights'): void {
  if (weights === undefined) return;
  if (!Array.isArray(weights) || weights.length === 0) throw new OtfuseError('BAD_USAGE', `--${flag} must be a non-empty list of numbers`);
  for (const w of weights) checkNumber(flag, w);
  const sum = weights.reduce((a, b) => a + b, 0);
  if (!Number.isFinite(sum) || sum <= 0 || weights.some((w) => !Number.isFinite(w / sum))) {
    throw new OtfuseError('BAD_USAGE', `--${flag} must have a finite, positive sum; got [${weights.join(', ')}]`);
  }
}

/** Checks a dataset argument's windowing and preprocessing numbers. */
export function checkDataArg(arg: unknown): void {
  if (!arg || typeof arg !== 'object') return;
  const spec = arg as { limit?: number; offset?: number; scale?: number; mean?: number[]; std?: number[]; maxLength?: number };
  checkOptional('max-length', spec.maxLength);
  checkOptional('limit', spec.limit);
  checkOptional('offset', spec.offset);
  checkOptional('scale', spec.scale);
  for (const m of spec.mean ?? []) checkNumber('mean', m);
  for (const s of spec.std ?? []) checkNumber('std', s);
}

/** Field name in engine requests → CLI flag. */
const FIELDS: Record<string, string> = {
  batchSize: 'batch-size',
  limit: 'limit',
  evalLimit: 'eval-limit',
  epochs: 'epochs',
  maxSteps: 'max-steps',
  warmupSteps: 'warmup-steps',
  seed: 'seed',
  kdTemp: 'kd-temp',
  kdAlpha: 'kd-alpha',
  lr: 'lr',
  weightDecay: 'weight-decay',
  labelSmoothing: 'label-smoothing',
  clipNorm: 'clip-norm',
};

/** Checks the numeric fields of an engine request (evaluate, fuse, finetune, or a fuse request's finetune stage). */
export function checkRequestNumbers(request: object): void {
  const r = request as Record<string, unknown>;
  for (const [field, flag] of Object.entries(FIELDS)) {
    const v = r[field];
    if (v !== undefined) checkNumber(flag, v as number);
  }
  for (const key of ['data', 'evalData']) checkDataArg(r[key]);
  const recipe = r.recipe as Record<string, unknown> | undefined;
  if (recipe && typeof recipe === 'object') {
    // The other fields are checked against the recipe registry by validateRecipe (resolveRecipe on entry).
    checkWeights(recipe.weights as number[] | undefined);
  }
  const autotune = r.autotune as { budgetSeconds?: number } | undefined;
  if (autotune && typeof autotune === 'object') checkOptional('autotune-budget', autotune.budgetSeconds);
  const baselines = r.baselines as { seeds?: number } | undefined;
  if (baselines && typeof baselines === 'object') checkOptional('seeds', baselines.seeds);
  if (r.finetune && typeof r.finetune === 'object') checkRequestNumbers(r.finetune as object);
}

/** The documented ranges in interval notation, one token per flag (the usage text prints them). */
export function numberRanges(): string[] {
  return Object.entries({ ...NUMBER_RULES, ...recipeNumberRules() }).map(([flag, r]) => {
    const lo = r.min !== undefined ? `[${r.min}` : r.above !== undefined ? `(${r.above}` : '(-∞';
    const hi = r.max !== undefined ? `${r.max}]` : r.below !== undefined ? `${r.below})` : '∞)';
    return `--${flag} ${r.zeroAllowed ? '0|' : ''}${lo},${hi}${r.integer ? 'ℤ' : ''}`;
  });
}
