// The training loops' learning-rate schedule and sample order (the finetune's and the trunk distillation's).

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
