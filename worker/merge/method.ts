// What a merge method is: its name, the parameters it takes (MERGE_PARAMS), whether it needs the base, how many
// models it merges, its formula (README, run.json, the extension's form) and its per-tensor function.
import type { MergeMethodName } from '../types';
import type { MethodParam, ResolvedMergeParams } from './params';

/** One tensor of every merged model (same name and shape), and of the base when the method uses one. */
export interface TensorInput {
  name: string;
  models: Float32Array[];
  base?: Float32Array;
}

export interface TensorOutput {
  values: Float32Array;
  /** SLERP: the tensor was near-colinear and was interpolated linearly. */
  colinear?: boolean;
}

export interface MergeMethod {
  name: MergeMethodName;
  title: string;
  /** Needs --base (task vectors δ_i = θ_i − θ_base). */
  needsBase: boolean;
  minModels: number;
  maxModels?: number;
  params: readonly MethodParam[];
  /** Plain-text formula, per tensor. */
  formula: string;
  /** The paper the method comes from. */
  reference: string;
  mergeTensor(input: TensorInput, params: ResolvedMergeParams): TensorOutput;
}
