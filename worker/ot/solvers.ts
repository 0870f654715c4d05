// The OT solver registry: every solver by name with its parameter spec and a uniform `solve`. `solveOT` is the one
// entry point fusion calls; the recipe schema, the CLI flags and the docs derive their solver lists and solver
// parameters (e.g. `reg`) from this table. Adding a solver = one file with its algorithm + one entry here.
import { OtfuseError } from '../errors';
import { emd, type EmdResult } from './emd';
import { sinkhorn, type SinkhornResult } from './sinkhorn';
import { sinkhornAsync } from './sinkhorn-ort';
import type { Weights } from './validate';

export type OTResult = EmdResult | SinkhornResult;

/** A numeric solver parameter; it doubles as a recipe field of the same name. */
export interface SolverParam {
  description: string;
  default: number;
  exclusiveMinimum?: number;
  minimum?: number;
}

export interface SolverSpec {
  description: string;
  /** Parameters the solver reads from the recipe / options (validated against this spec). */
  params: Record<string, SolverParam>;
  /** Solve with marginals a, b and cost M (n×m row-major); `params` holds the declared parameters, `extra` solver-specific options. */
  solve(a: Weights, b: Weights, M: Float64Array | Float32Array, params: Record<string, number>, extra: Record<string, unknown>): OTResult;
  /** Optional: the same solve through ONNX Runtime on an execution provider (GPU), with the same result contract. */
  solveOrt?(
    a: Weights,
    b: Weights,
    M: Float64Array | Float32Array,
    params: Record<string, number>,
    extra: Record<string, unknown>,
    provider: OrtProvider,
  ): Promise<OTResult>;
}

/** Execution providers a solver's ONNX Runtime path can run on. */
export type OrtProvider = 'cpu' | 'cuda' | 'webgpu';

export const SOLVERS = {
  emd: {
    description: 'exact OT (network simplex; an assignment for equal sizes)',
    params: {},
    solve: (a, b, M, _params, extra) => emd(a, b, M, extra),
  },
  sinkhorn: {
    description: 'entropic OT (Sinkhorn, POT-compatible)',
    params: {
      reg: { description: 'Sinkhorn regularisation (after cost normalisation).', default: 0.08, exclusiveMinimum: 0 },
    },
    solve: (a, b, M, params, extra) => {
      if (params.reg === undefined) throw new OtfuseError('BAD_DATA', 'Sinkhorn needs options.reg');
      return sinkhorn(a, b, M, params.reg, extra);
    },
    // POT's Knopp iteration as one float64 ONNX graph (sinkhorn-ort.ts); hard cases fall back to the JS solver.
    solveOrt: (a, b, M, params, extra, provider) => {
      if (params.reg === undefined) throw new OtfuseError('BAD_DATA', 'Sinkhorn needs options.reg');
      return sinkhornAsync(a, b, M, params.reg, { ...extra, backend: 'ort', provider });
    },
  },
} as const satisfies Record<string, SolverSpec>;

export type OtSolverName = keyof typeof SOLVERS;
export const SOLVER_NAMES = Object.keys(SOLVERS) as OtSolverName[];

/** Every solver parameter by name (the union over solvers; one recipe field each). */
export function solverParams(): Record<string, SolverParam> {
  const out: Record<string, SolverParam> = {};
  for (const spec of Object.values(SOLVERS) as SolverSpec[]) Object.assign(out, spec.params);
  return out;
}

/** The declared parameters of `solver`, picked from a bag of values (e.g. a resolved recipe). */
export function pickSolverParams(solver: string, values: Record<string, unknown>): Record<string, number> {
  const spec = lookup(solver);
  const out: Record<string, number> = {};
  for (const name of Object.keys(spec.params)) if (typeof values[name] === 'number') out[name] = values[name] as number;
  return out;
}

function lookup(solver: string): SolverSpec {
  if (!Object.prototype.hasOwnProperty.call(SOLVERS, solver)) {
    throw new OtfuseError('BAD_DATA', `unknown OT solver '${solver}' (expected ${SOLVER_NAMES.join(' or ')})`);
  }
  return SOLVERS[solver as OtSolverName] as SolverSpec;
}

export type SolveOptions = { solver: OtSolverName } & Record<string, unknown>;

function split(solver: string, rest: Record<string, unknown>): { spec: SolverSpec; params: Record<string, number>; extra: Record<string, unknown> } {
  const spec = lookup(solver);
  const params: Record<string, number> = {};
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rest)) {
    if (k in spec.params) params[k] = v as number;
    else extra[k] = v;
  }
  for (const [k, p] of Object.entries(spec.params)) {
    const v = params[k];
    if (v === undefined) continue;
    if (
      typeof v !== 'number' ||
      !Number.isFinite(v) ||
      (p.exclusiveMinimum !== undefined && v <= p.exclusiveMinimum) ||
      (p.minimum !== undefined && v < p.minimum)
    ) {
      throw new OtfuseError(
        'BAD_DATA',
        `${solver}: parameter '${k}' must be a finite number${p.exclusiveMinimum !== undefined ? ` > ${p.exclusiveMinimum}` : ''} (got ${v})`,
      );
    }
  }
  return { spec, params, extra };
}

/**
 * solveOT with an execution provider: solvers with an ONNX Runtime path (solveOrt) run there when `ort` is given,
 * the others (and every solver without `ort`) run in JS. Callers never branch on solver names.
 */
export async function solveOTAsync(a: Weights, b: Weights, M: Float64Array | Float32Array, options: SolveOptions, ort?: OrtProvider): Promise<OTResult> {
  const { solver, ...rest } = options;
  const { spec, params, extra } = split(solver, rest);
  return ort && spec.solveOrt ? spec.solveOrt(a, b, M, params, extra, ort) : spec.solve(a, b, M, params, extra);
}

/**
 * The one OT entry point: `options.solver` names a registered solver; its declared parameters are taken from
 * `options` (and checked), every other field goes to the solver as an option.
 */
export function solveOT(a: Weights, b: Weights, M: Float64Array | Float32Array, options: SolveOptions): OTResult {
  const { solver, ...rest } = options;
  const { spec, params, extra } = split(solver, rest);
  return spec.solve(a, b, M, params, extra);
}
