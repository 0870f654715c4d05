// The merge-method registry: one entry per method (methods/*.ts). CLI flags, validation, run.json, the README's
// table and the extension's form read it; adding a method is one file in methods/ plus its line here and a test.
import { OtfuseError } from '../errors';
import type { MergeMethodName } from '../types';
import type { MergeMethod } from './method';
import { dareLinear, dareTies } from './methods/dare';
import { linear } from './methods/linear';
import { slerp } from './methods/slerp';
import { taskArithmetic } from './methods/task_arithmetic';
import { ties } from './methods/ties';
import { MERGE_PARAMS, type MergeParamSpec } from './params';

export const MERGE_METHODS: readonly MergeMethod[] = [linear, taskArithmetic, ties, dareLinear, dareTies, slerp];

// Compile-time check: types.ts' MergeMethodName mirror and the registry name the same methods.
type RegistryNames = (typeof MERGE_METHODS)[number]['name'];
const _mirror: [MergeMethodName] extends [RegistryNames] ? ([RegistryNames] extends [MergeMethodName] ? true : never) : never = true;
void _mirror;

export function mergeMethodNames(): MergeMethodName[] {
  return MERGE_METHODS.map((m) => m.name);
}

export function getMergeMethod(name: string): MergeMethod {
  const m = MERGE_METHODS.find((x) => x.name === name);
  if (!m) throw new OtfuseError('BAD_USAGE', `unknown merge method '${name}' (one of ${mergeMethodNames().join(', ')})`);
  return m;
}

/** Every parameter any method takes, once (CLI flags and help). */
export function mergeParamSpecs(): MergeParamSpec[] {
  const names = new Set(MERGE_METHODS.flatMap((m) => m.params.map((p) => p.name)));
  return Object.values(MERGE_PARAMS).filter((s) => names.has(s.name));
}

/** A form/doc description of one method: its parameters with domain and the method's default. */
export interface MergeMethodDescription {
  name: MergeMethodName;
  title: string;
  needsBase: boolean;
  minModels: number;
  maxModels?: number;
  formula: string;
  reference: string;
  params: { name: string; flag: string; type: MergeParamSpec['type']; domain: string; description: string; default?: number | boolean; required: boolean }[];
}

export function describeMergeMethods(): MergeMethodDescription[] {
  return MERGE_METHODS.map((m) => ({
    name: m.name,
    title: m.title,
    needsBase: m.needsBase,
    minModels: m.minModels,
    ...(m.maxModels !== undefined ? { maxModels: m.maxModels } : {}),
    formula: m.formula,
    reference: m.reference,
    params: m.params.map((p) => {
      const s = MERGE_PARAMS[p.name];
      const def = p.default ?? s.default;
      return {
        name: s.name,
        flag: s.flag,
        type: s.type,
        domain: s.domain,
        description: s.description,
        ...(def !== undefined ? { default: def } : {}),
        required: !!p.required || (def === undefined && s.name !== 'weights'),
      };
    }),
  }));
}
