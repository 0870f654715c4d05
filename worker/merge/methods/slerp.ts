// slerp (two models): per tensor, spherical interpolation by the angle between the two tensors (each flattened
// and normalised to find the angle; the originals are interpolated), linear when they are near-colinear
// (|cos Ω| > 0.9995, mergekit's threshold). t = 0 gives the first model, t = 1 the second.
import type { MergeMethod } from '../method';

export const COLINEAR_THRESHOLD = 0.9995;
const NORM_EPS = 1e-8;

export const slerp: MergeMethod = {
  name: 'slerp',
  title: 'SLERP (spherical interpolation of two models)',
  needsBase: false,
  minModels: 2,
  maxModels: 2,
  params: [{ name: 't', required: true }],
  formula: 'cos Ω = ⟨θ_A/‖θ_A‖, θ_B/‖θ_B‖⟩; θ = sin((1−t)Ω)/sin Ω · θ_A + sin(tΩ)/sin Ω · θ_B  (|cos Ω| > 0.9995: (1−t)θ_A + tθ_B)',
  reference: 'https://dl.acm.org/doi/10.1145/325165.325242',
  mergeTensor({ models: [a, b] }, { t }) {
    let na = 0;
    let nb = 0;
    let ab = 0;
    for (let j = 0; j < a.length; j++) {
      na += a[j] * a[j];
      nb += b[j] * b[j];
      ab += a[j] * b[j];
    }
    na = Math.sqrt(na);
    nb = Math.sqrt(nb);
    // A vector of norm ≤ 1e-8 is not normalised (as in mergekit).
    const cos = ab / (na > NORM_EPS ? na : 1) / (nb > NORM_EPS ? nb : 1);
    const out = new Float32Array(a.length);
    if (Math.abs(cos) > COLINEAR_THRESHOLD) {
      for (let j = 0; j < out.length; j++) out[j] = (1 - t) * a[j] + t * b[j];
      return { values: out, colinear: true };
    }
    const omega = Math.acos(cos);
    const s = Math.sin(omega);
    const s0 = Math.sin(omega - omega * t) / s;
    const s1 = Math.sin(omega * t) / s;
    for (let j = 0; j < out.length; j++) out[j] = s0 * a[j] + s1 * b[j];
    return { values: out };
  },
};
