// Every number a user can pass (CLI flag or engine request field), named once with its domain. The CLI checks
// flags at parse time and the engine checks requests on entry (the extension calls the engine directly), so a
// value outside its domain is a usage error (exit 2) before any work starts — never a silent wrong result.
import { OtfuseError } from './errors';

export interface NumberRule {
  integer?: boolean;
  min?: number;
  /** Strict lower bound. */
  above?: number;
  max?: number;
  /** Strict upper bound. */
  below?: number;
  what: string;
}

/** Keyed by CLI flag name. */
export const NUMBER_RULES: Record<string, NumberRule> = {
  'batch-size': { integer: true, min: 1, max: 1 << 20, what: 'samples per batch' },
  limit: { integer: true, min: 1, what: 'number of samples' },
  offset: { integer: true, min: 0, what: 'index of the first sample' },
  'eval-limit': { integer: true, min: 1, what: 'number of evaluation samples' },
  samples: { integer: true, min: 2, what: 'calibration samples' },
  epochs: { above: 0, max: 1e6, what: 'epochs (fractions allowed)' },
  'max-steps': { integer: true, min: 1, what: 'training steps' },
  'warmup-steps': { integer: true, min: 0, what: 'warmup steps' },
  seed: { integer: true, min: 0, max: 2 ** 31 - 1, what: 'random seed' },
  lr: { above: 0, max: 1e3, what: 'learning rate' },
  'weight-decay': { min: 0, max: 1e3, what: 'weight decay' },
  'label-smoothing': { min: 0, below: 1, what: 'label smoothing' },
  'clip-norm': { min: 0, what: 'gradient clipping norm (0 = off)' },
  reg: { above: 0, what: 'entropic regularisation' },
  scale: { above: 0, what: 'pixel scale' },
  mean: { what: 'per-channel mean' },
  std: { above: 0, what: 'per-channel standard deviation' },
  weights: { min: 0, what: 'model weight' },
};

function describe(rule: NumberRule): string {
  const parts: string[] = [rule.integer ? 'an integer' : 'a finite number'];
  if (rule.min !== undefined) parts.push(`≥ ${rule.min}`);
  if (rule.above !== undefined) parts.push(`> ${rule.above}`);
  if (rule.max !== undefined) parts.push(`≤ ${rule.max}`);
  if (rule.below !== undefined) parts.push(`< ${rule.below}`);
  return parts.join(' ');
}

/** Checks one value against its flag's rule; returns it. */
export function checkNumber(flag: string, value: number, rule: NumberRule | undefined = NUMBER_RULES[flag]): number {
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
  const spec = arg as { limit?: number; offset?: number; scale?: number; mean?: number[]; std?: number[] };
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
  const recipe = r.recipe as { reg?: number; samples?: number; weights?: number[] } | undefined;
  if (recipe && typeof recipe === 'object') {
    checkOptional('reg', recipe.reg);
    checkOptional('samples', recipe.samples);
    checkWeights(recipe.weights);
  }
  if (r.finetune && typeof r.finetune === 'object') checkRequestNumbers(r.finetune as object);
}
