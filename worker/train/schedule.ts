// What the training loops share (the finetune's and the trunk distillation's): the learning-rate schedule, the sample
// order, and the parameters fed as views of one flat vector.
import * as ort from 'onnxruntime-node';
import type { ParamLayout } from './graphs';

/** Warmup (linear from 0) then cosine decay to 0; `step` counts from 1. */
export function learningRate(step: number, totalSteps: number, baseLr: number, warmupSteps: number): number {
  if (warmupSteps > 0 && step <= warmupSteps) return (baseLr * step) / warmupSteps;
  const span = Math.max(1, totalSteps - warmupSteps);
  const progress = Math.min(1, (step - warmupSteps) / span);
  return baseLr * 0.5 * (1 + Math.cos(Math.PI * progress));
}

export function shuffled(count: number, rand: () => number): Int32Array {
  const order = new Int32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/** The step and evaluation graphs' parameter inputs: views of the flat vector (updated in place, fed without a copy). */
export function paramFeeds(layout: ParamLayout, flat: Float32Array): Record<string, ort.Tensor> {
  return Object.fromEntries(layout.slots.map((s) => [s.name, new ort.Tensor('float32', flat.subarray(s.offset, s.offset + s.size), s.dims)]));
}
