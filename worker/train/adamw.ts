// AdamW on the host, in place: the training-step graph returns the flat gradient and its norm; the parameters and
// both moments are updated here, element by element, without the per-step copies an optimizer inside the graph
// needs (a new parameter tensor, two new moment tensors and the chain of elementwise intermediates ONNX Runtime
// holds for them: for ViT-B/16, 86 M parameters, those were ~5 GB of the finetune's 8 GB peak).

export interface AdamWSettings {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay (the finetune's --weight-decay; its default lives in FINETUNE_DEFAULTS). */
  weightDecay: number;
  /** Clip gradients to this global L2 norm (0 = no clipping; --clip-norm). */
  clipNorm: number;
}

const MOMENT_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/**
 * One decoupled-weight-decay Adam step (Loshchilov & Hutter), in place on `params`, `m` and `v`:
 *   g ← g · min(1, clip / (‖g‖ + 1e-6));  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
 *   p ← p·(1 − lr·wd) − lr · (m / (1−β1^t)) / (√(v / (1−β2^t)) + ε)
 * with the decay only on the first `decayed` entries (the layout puts the decayed parameters first).
 * `gradNorm` is ‖g‖ as the step graph computed it.
 */
export function adamwStep(
  params: Float32Array,
  m: Float32Array,
  v: Float32Array,
  grad: Float32Array,
  gradNorm: number,
  o: AdamWSettings & { lr: number; step: number; decayed: number },
): void {
  const beta1 = o.beta1 ?? MOMENT_DEFAULTS.beta1;
  const beta2 = o.beta2 ?? MOMENT_DEFAULTS.beta2;
  const eps = o.eps ?? MOMENT_DEFAULTS.eps;
  const wd = o.weightDecay;
  const clip = o.clipNorm;
  const scale = clip > 0 ? Math.min(1, clip / (gradNorm + 1e-6)) : 1;
  const stepSize = o.lr / (1 - beta1 ** o.step);
  const vScale = 1 / Math.sqrt(1 - beta2 ** o.step);
  const decay = 1 - o.lr * wd;
  const a1 = 1 - beta1,
    a2 = 1 - beta2;
  const n = params.length;
  for (let i = 0; i < n; i++) {
    const g = grad[i] * scale;
    const mi = beta1 * m[i] + a1 * g;
    const vi = beta2 * v[i] + a2 * g * g;
    m[i] = mi;
    v[i] = vi;
    const p = i < o.decayed ? params[i] * decay : params[i];
    params[i] = p - (stepSize * mi) / (Math.sqrt(vi) * vScale + eps);
  }
}
