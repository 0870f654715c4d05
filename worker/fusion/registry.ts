// Option registries: every fusion option value by name, with what it needs and what it does. The TS unions
// (worker/types.ts), recipe validation and JSON schema (recipe.ts, recipe.schema.json), the CLI's value lists and
// usage text (worker/cli.ts) and README's option list all derive from these tables. Adding a residual policy =
// one entry here (+ its test); adding an OT solver = one file + one entry in worker/ot/solvers.ts.
import type * as Contract from '../types';
import { combineMaps, type TMap } from './maps';
export { SOLVERS, SOLVER_NAMES, type OtSolverName } from '../ot/solvers';
export { GROUND_METRICS, COST_NORMS, type MetricKind, type Normalisation } from '../ot/metric';

/** What a residual policy sees at an Add: the skip path's map, the branch's, and (lazily) mean |activation| per anchor neuron of each. */
export interface ResidualInputs {
  skip: TMap;
  branch: TMap;
  skipAbs(): Float64Array;
  branchAbs(): Float64Array;
}

export interface ResidualPolicySpec {
  description: string;
  /** Reads activations (mean |activation| of each path) even when alignment is by weights. */
  needsActivations: boolean;
  /** The map after the Add. */
  combine(x: ResidualInputs): TMap;
}

function meanOf(v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return s / Math.max(1, v.length);
}

export const RESIDUAL_POLICIES = {
  no_resid: { description: 'the branch map', needsActivations: false, combine: (x) => x.branch },
  only_resid: { description: 'the skip map', needsActivations: false, combine: (x) => x.skip },
  mean: {
    description: 'the average of skip and branch maps (reference default)',
    needsActivations: false,
    combine: (x) => combineMaps(x.skip, x.branch, [0.5], [0.5]),
  },
  weighted_scalar: {
    description: 'skip and branch weighted by their mean |activation| (one scalar each)',
    needsActivations: true,
    combine: (x) => {
      const s = meanOf(x.skipAbs()),
        b = meanOf(x.branchAbs());
      return combineMaps(x.skip, x.branch, [s / (s + b)], [b / (s + b)]);
    },
  },
  weighted_matrix: {
    description: 'skip and branch weighted per anchor neuron by mean |activation|',
    needsActivations: true,
    combine: (x) => {
      const s = x.skipAbs(),
        b = x.branchAbs();
      const ws = new Float64Array(s.length),
        wb = new Float64Array(s.length);
      for (let j = 0; j < s.length; j++) {
        const t = s[j] + b[j] || 1;
        ws[j] = s[j] / t;
        wb[j] = b[j] / t;
      }
      return combineMaps(x.skip, x.branch, ws, wb);
    },
  },
} as const satisfies Record<string, ResidualPolicySpec>;
export type ResidualPolicy = keyof typeof RESIDUAL_POLICIES;

export interface OptionSpec {
  description: string;
  needsActivations?: boolean;
}

export const ALIGN_BY = {
  acts: { description: 'cost from activations on calibration data', needsActivations: true },
  wts: { description: 'cost from (input-aligned, L2-normalised) weight rows', needsActivations: false },
} as const satisfies Record<string, OptionSpec>;
export type AlignBy = keyof typeof ALIGN_BY;

export const QK_MODES = {
  separate: { description: 'one OT for Q and one for K' },
  joint: { description: 'one OT over the Q|K neurons stacked' },
  eq_t_map: { description: 'one map from Q and K features together, used for both' },
} as const satisfies Record<string, OptionSpec>;
export type QkMode = keyof typeof QK_MODES;

export const TOKEN_FILTERS = {
  all: { description: 'every token is a sample' },
  cls: { description: 'the CLS token only' },
  window: { description: 'CLS + the central (g−2)×(g−2) patches' },
} as const satisfies Record<string, OptionSpec>;
export type TokenFilter = keyof typeof TOKEN_FILTERS;

export const REFITS = {
  none: { description: 'plain weighted average of the aligned layers (the paper)', needsActivations: false },
  regmean: {
    description: "closed-form least-squares refit of every aligned linear layer from the parents' input Gram matrices (RegMean)",
    needsActivations: true,
  },
  'regmean++': { description: "as regmean, the inputs taken layer by layer from the fused model's own forward pass (RegMean++)", needsActivations: true },
} as const satisfies Record<string, OptionSpec>;
export type RefitMode = keyof typeof REFITS;

/** Per calibration sample, how much each parent's output counts in the refit's targets (and, for regmean, its Gram). */
export const REFIT_MIXES = {
  uniform: { description: 'every parent weighted by its α on every sample' },
  confidence: {
    description:
      'per sample, each parent weighted by α × its confidence (the largest softmax probability of its output), normalised over the parents: the parent that knows an input best leads its targets',
  },
  label: {
    description: "per sample, each parent weighted by α × its probability of the sample's label, normalised over the parents (needs labelled calibration data)",
  },
} as const satisfies Record<string, OptionSpec>;
export type RefitMix = keyof typeof REFIT_MIXES;

/** Keys that must never appear in a recipe (prototype pollution). */
export const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** The names of a registry table, in declaration order. */
export function namesOf<T extends object>(table: T): (keyof T & string)[] {
  return Object.keys(table) as (keyof T & string)[];
}

// Compile-time check: the import-free mirrors of these names in worker/types.ts (which the webview type-checks)
// equal the registries' keys. Adding an option here without updating the mirror fails the build.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _mirrors: [
  Same<ResidualPolicy, Contract.ResidualPolicy>,
  Same<AlignBy, Contract.AlignBy>,
  Same<QkMode, Contract.QkMode>,
  Same<TokenFilter, Contract.TokenFilter>,
  Same<RefitMode, Contract.RefitMode>,
  Same<RefitMix, Contract.RefitMix>,
  Same<import('../ot/metric').MetricKind, Contract.MetricKind>,
  Same<import('../ot/metric').Normalisation, Contract.Normalisation>,
  Same<import('../ot/solvers').OtSolverName, Contract.OtSolver>,
] = [true, true, true, true, true, true, true, true, true];
void _mirrors;
