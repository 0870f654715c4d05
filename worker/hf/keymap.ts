// Which ONNX initializer holds each checkpoint tensor. A model imported from HF (or fused onto an imported
// anchor) keeps the keys as initializer names; any other model of the same structure (e.g. a PyTorch ONNX
// export, whose MatMul weights are transposed and renamed) is paired by role in the graph analysis.
import { OtfuseError } from '../errors';
import { analyzeModel, type LinearRef, type ModelPlan } from '../graph/analyze';
import { planParams } from '../fusion/schedule';
import type { OnnxModel } from '../onnx/model';

export interface KeySource {
  /** Initializer name in the model. */
  name: string;
  /** The initializer is the transpose of the checkpoint's layout ([in, out] vs HF's [out, in]). */
  transposed: boolean;
}

/** key → source, for every key the imported template places as a parameter. */
export function mapKeys(template: OnnxModel, model: OnnxModel, keys: string[]): Map<string, KeySource> {
  const out = new Map<string, KeySource>();
  const missing = keys.filter((k) => !model.hasInitializer(k));
  if (missing.length === 0) {
    for (const k of keys) out.set(k, { name: k, transposed: false });
    return out;
  }
  // Pair by role: both graphs analysed, parameters matched by their place in the plan.
  let tPlan: ModelPlan;
  let mPlan: ModelPlan;
  try {
    tPlan = analyzeModel(template);
    mPlan = analyzeModel(model);
  } catch (err) {
    throw new OtfuseError(
      'MISMATCH',
      `the model has no initializer '${missing[0]}' and its structure cannot be paired with the checkpoint's: ${(err as Error).message}`,
      { file: model.file },
    );
  }
  const tRoles = new Map(planParams(tPlan).map((r) => [r.role, r.name] as const));
  const mRoles = new Map(planParams(mPlan).map((r) => [r.role, r.name] as const));
  const tLinear = linearsByWeight(tPlan);
  const mLinear = linearsByWeight(mPlan);
  for (const k of keys) {
    if (model.hasInitializer(k) && !missing.includes(k)) {
      out.set(k, { name: k, transposed: false });
      continue;
    }
    const role = [...tRoles].find(([, name]) => name === k)?.[0];
    const name = role ? mRoles.get(role) : undefined;
    if (!role || !name) throw new OtfuseError('MISMATCH', `no parameter of the model takes the place of checkpoint tensor '${k}'`, { file: model.file });
    const tl = tLinear.get(k);
    const ml = mLinear.get(name);
    out.set(k, { name, transposed: !!tl && !!ml && tl.outIn !== ml.outIn });
  }
  return out;
}

function linearsByWeight(plan: ModelPlan): Map<string, LinearRef> {
  const m = new Map<string, LinearRef>();
  const add = (l?: LinearRef) => {
    if (l) m.set(l.weight, l);
  };
  for (const b of plan.blocks) [b.attn.q, b.attn.k, b.attn.v, b.attn.o, b.fc1, b.fc2].forEach(add);
  add(plan.head.pooler);
  add(plan.head.classifier);
  return m;
}
