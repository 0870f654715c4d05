// Optimal-transport core: ground metrics, exact (EMD) and entropic (Sinkhorn) solvers, plan diagnostics.
// Every solver has the same shape: (a, b, M, options) → { plan, n, m, cost, ... } with M n×m row-major float64.
import { OtfuseError } from '../errors';
import { sinkhorn, type SinkhornOptions } from './sinkhorn';
import type { Weights } from './validate';

export { emd, networkSimplex, type EmdOptions, type EmdResult } from './emd';
export { sinkhorn, type SinkhornOptions, type SinkhornResult, type SinkhornMethod } from './sinkhorn';
export {
  sinkhornAsync,
  releaseSinkhornSessions,
  ORT_AUTO_MIN_ENTRIES,
  type SinkhornAsyncOptions,
  type SinkhornAsyncResult,
  type SinkhornBackend,
  type SinkhornProvider,
} from './sinkhorn-ort';
export { linearAssignment, type AssignmentResult } from './lap';
export {
  groundMetric,
  gram,
  median,
  GROUND_METRICS,
  COST_NORMS,
  type GroundMetricOptions,
  type GroundMetricResult,
  type MetricKind,
  type Normalisation,
} from './metric';
export { uniform, checkProblem, type PlanResult, type Weights } from './validate';
export {
  transportCost,
  planEntropy,
  meanBestMatchMass,
  permutationDistance,
  planPreview,
  diagnose,
  type PermutationDistance,
  type Preview,
  type PlanDiagnostics,
} from './diagnostics';

export {
  SOLVERS,
  SOLVER_NAMES,
  solveOT,
  solveOTAsync,
  type OrtProvider,
  solverParams,
  pickSolverParams,
  type OTResult,
  type OtSolverName,
  type SolverSpec,
  type SolverParam,
  type SolveOptions,
} from './solvers';
import type { OTResult } from './solvers';

export type OTSolver<O> = (a: Weights, b: Weights, M: Float64Array | Float32Array, options: O) => OTResult;

export interface SinkhornSolverOptions extends SinkhornOptions {
  reg: number;
}

/** Sinkhorn with the uniform signature (reg inside the options). */
export const sinkhornSolver: OTSolver<SinkhornSolverOptions> = (a, b, M, options) => {
  if (!options || options.reg === undefined) throw new OtfuseError('BAD_DATA', 'Sinkhorn needs options.reg');
  const { reg, ...rest } = options;
  return sinkhorn(a, b, M, reg, rest);
};
