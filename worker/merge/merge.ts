// Same-base merging on loaded models (no files written): checks that every parent (and the base) holds the same
// parameters with the same shapes, then merges each float initializer with the method's per-tensor function into
// a clone of the template (the base, or the first model). Integer initializers (shape constants) stay the template's.
import path from 'node:path';
import { OtfuseError, throwIfCancelled } from '../errors';
import { isFloatTensor, type OnnxModel } from '../onnx/model';
import { cloneForWeights } from '../onnx/params';
import type { ProgressEvent } from '../types';
import type { MergeMethod } from './method';
import type { ResolvedMergeParams } from './params';

export interface MergeLoadedInput {
  models: OnnxModel[];
  base?: OnnxModel;
  method: MergeMethod;
  params: ResolvedMergeParams;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

export interface MergeLoadedResult {
  merged: OnnxModel;
  /** Float initializers merged, integer/other initializers kept from the template. */
  tensors: number;
  constants: number;
  colinear: number;
}

interface TensorShape {
  dims: number[];
  float: boolean;
}

function shapes(model: OnnxModel): Map<string, TensorShape> {
  const out = new Map<string, TensorShape>();
  for (const t of model.graph.initializer ?? []) out.set(t.name ?? '', { dims: (t.dims ?? []).map(Number), float: isFloatTensor(t) });
  return out;
}

/** Every model holds the template's float parameters with the same shapes (and no float parameter it lacks). */
export function checkSameParameters(template: OnnxModel, others: OnnxModel[]): string[] {
  const ref = shapes(template);
  const floats = [...ref].filter(([, s]) => s.float).map(([n]) => n);
  for (const m of others) {
    const own = shapes(m);
    for (const name of floats) {
      const s = own.get(name);
      if (!s)
        throw new OtfuseError('MISMATCH', `no parameter '${name}' (in ${path.basename(template.file)}): merged models must share parameter names`, {
          file: m.file,
          node: name,
        });
      const want = ref.get(name)!.dims;
      if (!s.float || s.dims.join('x') !== want.join('x'))
        throw new OtfuseError(
          'MISMATCH',
          `parameter '${name}' has shape [${s.dims.join(', ')}] but [${want.join(', ')}] in ${path.basename(template.file)}: merged models must have identical shapes`,
          { file: m.file, node: name },
        );
    }
    for (const [name, s] of own)
      if (s.float && !ref.has(name))
        throw new OtfuseError('MISMATCH', `parameter '${name}' is not in ${path.basename(template.file)}: merged models must share parameter names`, {
          file: m.file,
          node: name,
        });
  }
  return floats;
}

export function mergeLoaded(input: MergeLoadedInput): MergeLoadedResult {
  const { models, base, method, params } = input;
  const template = base ?? models[0];
  const names = checkSameParameters(
    template,
    models.filter((m) => m !== template),
  );
  const merged = cloneForWeights(template);
  let colinear = 0;
  for (let k = 0; k < names.length; k++) {
    throwIfCancelled(input.signal);
    const name = names[k];
    const values = models.map((m) => m.getInitializer(name).data);
    const out = method.mergeTensor({ name, models: values, base: base?.getInitializer(name).data }, params);
    if (out.colinear) colinear++;
    merged.setInitializer(name, out.values);
    input.onProgress?.({ stage: 'merge', layer: name, done: k + 1, total: names.length });
  }
  const constants = (template.graph.initializer ?? []).length - names.length;
  return { merged, tensors: names.length, constants, colinear };
}
