// The parameters of the merge methods, each named once with its domain, CLI flag and description. A method lists
// which of them it takes (and may change a default); CLI flags, validation, run.json and the extension's form are
// derived from these specs and the method registry (registry.ts).
import { OtfuseError } from '../errors';
import { checkNumber, checkWeights, type NumberRule } from '../numbers';
import type { MergeParams } from '../types';

export type MergeParamName = keyof MergeParams;

export interface MergeParamSpec {
  name: MergeParamName;
  /** CLI flag (without --). */
  flag: string;
  type: 'number' | 'numberList' | 'boolean';
  /** The domain of a number (each entry of a list). */
  rule?: NumberRule;
  /** Default value; undefined with `required` means the user must give it. Weights default to 1 per model. */
  default?: number | boolean;
  description: string;
  /** Domain in words for docs and forms, e.g. "(0, 1]". */
  domain: string;
}

export const MERGE_PARAMS: Record<MergeParamName, MergeParamSpec> = {
  weights: {
    name: 'weights',
    flag: 'weights',
    type: 'numberList',
    rule: { min: 0, what: 'model weight' },
    description: 'one weight w_i per merged model (not the base), comma-separated; default 1 each',
    domain: 'each ≥ 0, sum > 0',
  },
  lambda: {
    name: 'lambda',
    flag: 'lambda',
    type: 'number',
    rule: { min: -100, max: 100, what: 'task-vector scale λ' },
    default: 1,
    description: 'scale λ of the merged task vector added to the base',
    domain: '[-100, 100]',
  },
  density: {
    name: 'density',
    flag: 'density',
    type: 'number',
    rule: { above: 0, max: 1, what: 'fraction of each task vector kept' },
    default: 1,
    description: 'fraction of each task vector kept (TIES: largest magnitudes; DARE: random, survivors × 1/density)',
    domain: '(0, 1]',
  },
  t: {
    name: 't',
    flag: 't',
    type: 'number',
    rule: { min: 0, max: 1, what: 'SLERP position' },
    description: 'SLERP position: 0 gives the first model, 1 the second',
    domain: '[0, 1]',
  },
  seed: {
    name: 'seed',
    flag: 'seed',
    type: 'number',
    rule: { integer: true, min: 0, max: 2 ** 31 - 1, what: 'seed of the DARE drop mask' },
    default: 0,
    description: 'seed of the random drop mask (recorded in run.json)',
    domain: 'integer in [0, 2³¹−1]',
  },
  normalize: {
    name: 'normalize',
    flag: 'normalize',
    type: 'boolean',
    description: 'divide the mixed task vector by the summed weights (TIES: of the entries kept)',
    domain: 'true | false',
  },
};

/** A method's use of a parameter: required or with a (method-specific) default. */
export interface MethodParam {
  name: MergeParamName;
  default?: number | boolean;
  required?: boolean;
}

export interface ResolvedMergeParams {
  weights: number[];
  lambda: number;
  density: number;
  t: number;
  seed: number;
  normalize: boolean;
}

/**
 * Checks `given` against the method's parameter list: a parameter the method does not take, a required one
 * missing, a value outside its domain, or a weight count ≠ model count is BAD_USAGE naming the flag.
 * Returns every parameter the method takes, resolved, plus neutral values for the rest (never read).
 */
export function resolveMergeParams(method: { name: string; params: readonly MethodParam[] }, given: MergeParams, models: number): ResolvedMergeParams {
  const takes = new Map(method.params.map((p) => [p.name, p]));
  for (const [key, value] of Object.entries(given)) {
    if (value === undefined) continue;
    if (!(key in MERGE_PARAMS)) throw new OtfuseError('BAD_USAGE', `unknown merge parameter '${key}'`);
    if (!takes.has(key as MergeParamName))
      throw new OtfuseError('BAD_USAGE', `--${MERGE_PARAMS[key as MergeParamName].flag} does not apply to method '${method.name}'`);
  }
  const out: ResolvedMergeParams = { weights: [], lambda: 1, density: 1, t: 0.5, seed: 0, normalize: false };
  for (const p of method.params) {
    const spec = MERGE_PARAMS[p.name];
    const value = given[p.name] ?? p.default ?? spec.default;
    if (p.name === 'weights') {
      const w = given.weights ?? new Array<number>(models).fill(1);
      checkWeights(w);
      if (w.length !== models) throw new OtfuseError('BAD_USAGE', `--weights has ${w.length} entries for ${models} models (the base takes none)`);
      out.weights = w;
      continue;
    }
    if (value === undefined) throw new OtfuseError('BAD_USAGE', `method '${method.name}' needs --${spec.flag} (${spec.description}; ${spec.domain})`);
    if (spec.type === 'boolean') {
      if (typeof value !== 'boolean') throw new OtfuseError('BAD_USAGE', `--${spec.flag} must be true or false`);
    } else checkNumber(spec.flag, value as number, spec.rule);
    (out as unknown as Record<string, unknown>)[p.name] = value;
  }
  return out;
}

/** The parameters run.json records: those the method takes, resolved. */
export function recordedParams(method: { params: readonly MethodParam[] }, p: ResolvedMergeParams): MergeParams {
  const out: Record<string, unknown> = {};
  for (const { name } of method.params) out[name] = p[name];
  return out as MergeParams;
}
