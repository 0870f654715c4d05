// Gradient checking: analytic gradients from the gradient graph against central finite differences of the
// loss the same graph computes. Works on float32 and float64 graphs (tensors keep their element type).
import * as ort from 'onnxruntime-node';
import { createOrtSession } from '../runtime/session';
import { OnnxModel } from '../onnx/model';
import { GradientGraphOptions, buildGradientGraph } from './graphs';

export interface GradCheckOptions extends GradientGraphOptions {
  /**
   * Data inputs plus `labels` (cross-entropy) or `loss_weights` (weighted sum), and values for wrt tensors
   * that are graph inputs (initializers are read from the model).
   */
  feeds: Record<string, ort.Tensor>;
  /** Finite-difference step (central differences: ±eps). */
  eps?: number;
  /** Coordinates checked per tensor (the largest-gradient ones first, then random ones). */
  samplesPerTensor?: number;
  seed?: number;
}

export interface GradCheckPoint {
  index: number;
  analytic: number;
  numeric: number;
}

export interface GradCheckEntry {
  name: string;
  size: number;
  points: GradCheckPoint[];
  /** Largest |analytic − numeric| / max(1e-3·scale, |analytic|, |numeric|) over the points. */
  maxRelErr: number;
  maxAbsErr: number;
  /** Largest |analytic| over the whole tensor (to judge absolute errors). */
  scale: number;
}

type FloatArray = Float32Array | Float64Array;

export async function gradientCheck(model: OnnxModel, options: GradCheckOptions): Promise<GradCheckEntry[]> {
  const gg = await buildGradientGraph(model, options);
  // Unoptimised: finite differences need the exact same arithmetic as the analytic run, no fused kernels.
  const session = await createOrtSession(gg.model.toBytes(), { optimization: 'disabled', threads: 1 });
  try {
    const feeds: Record<string, ort.Tensor> = { ...options.feeds };
    const initNames = new Set(model.initializerNames());
    for (const w of gg.wrt) {
      if (feeds[w]) continue;
      if (!initNames.has(w)) throw new Error(`gradientCheck: no value for '${w}'`);
      const t = model.graph.initializer!.find((x) => x.name === w)!;
      const init = model.getInitializer(w);
      feeds[w] =
        t.dataType === 11 ? new ort.Tensor('float64', Float64Array.from(init.data), init.dims) : new ort.Tensor('float32', init.data.slice(), init.dims);
    }
    const base = await session.run(feeds);
    const eps = options.eps ?? 1e-3;
    const perTensor = options.samplesPerTensor ?? 4;
    let s = (options.seed ?? 7) >>> 0 || 1;
    const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    const entries: GradCheckEntry[] = [];
    for (let k = 0; k < gg.wrt.length; k++) {
      const name = gg.wrt[k];
      const analytic = base[gg.gradOutputs[k]].data as FloatArray;
      const values = feeds[name].data as FloatArray;
      const size = values.length;
      let scale = 0;
      for (let i = 0; i < size; i++) scale = Math.max(scale, Math.abs(analytic[i]));
      const order = Array.from({ length: size }, (_, i) => i).sort((a, b) => Math.abs(analytic[b]) - Math.abs(analytic[a]));
      const picks = new Set<number>(order.slice(0, Math.ceil(perTensor / 2)));
      while (picks.size < Math.min(perTensor, size)) picks.add(Math.floor(rand() * size));
      const points: GradCheckPoint[] = [];
      for (const index of picks) {
        const original = values[index];
        const lossAt = async (v: number) => {
          const copy = values.slice() as FloatArray;
          copy[index] = v;
          const out = await session.run({ ...feeds, [name]: new ort.Tensor(feeds[name].type as 'float32', copy, feeds[name].dims) }, ['loss']);
          return Number((out.loss.data as FloatArray)[0]);
        };
        // Step taken in the tensor's own precision so that the actual perturbation is what is divided by.
        const up = values instanceof Float32Array ? Math.fround(original + eps) : original + eps;
        const down = values instanceof Float32Array ? Math.fround(original - eps) : original - eps;
        const numeric = ((await lossAt(up)) - (await lossAt(down))) / (up - down);
        points.push({ index, analytic: analytic[index], numeric });
      }
      let maxRelErr = 0;
      let maxAbsErr = 0;
      for (const p of points) {
        const diff = Math.abs(p.analytic - p.numeric);
        maxAbsErr = Math.max(maxAbsErr, diff);
        maxRelErr = Math.max(maxRelErr, diff / Math.max(1e-3 * scale, Math.abs(p.analytic), Math.abs(p.numeric), 1e-12));
      }
      entries.push({ name, size, points, maxRelErr, maxAbsErr, scale });
    }
    return entries;
  } finally {
    await session.release();
  }
}
