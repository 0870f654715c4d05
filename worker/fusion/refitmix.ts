// Per-sample mixing of the parents in the refit (recipe.refitMix, issue 28). The refit's targets are
// Σ_k m_k(x)·(parent k's layer output on x) with m_k(x) = α_k for 'uniform' (RegMean as before); 'confidence' and
// 'label' let the parent that knows an input best lead its targets there: m_k(x) = α_k s_k(x) / Σ_j α_j s_j(x), with
// s_k(x) parent k's largest softmax probability ('confidence') or its probability of x's label ('label'). Parents
// trained on different data (non-IID) are each confident on their own classes; a uniform mix asks the fused layer
// to reproduce the average of an expert's features and a non-expert's.
//
// The refit multiplies model k's input rows by w_k(x) = m_k(x)/α_k (so that Σ_k α_k w_k(x) = 1 per sample and the
// fused model's own Gram in regmean++ is unchanged): the cross products X̂ᵀ diag(w_k) Ẑ_k and the Grams
// Ẑ_kᵀ diag(w_k) Ẑ_k.
import { OtfuseError, throwIfCancelled } from '../errors';
import type { OnnxModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import type { ProviderChoice } from '../runtime/providers';
import { ModelRunner } from '../runtime/runner';
import type { RefitMix } from './registry';

/** Softmax probabilities [samples × classes] of a classifier's first output on the first `samples` samples. */
async function probabilities(model: OnnxModel, calib: Dataset, samples: number, provider?: ProviderChoice, signal?: AbortSignal) {
  const runner = await ModelRunner.create(model, { provider });
  try {
    const binding = runner.bind(calib, { checkLabels: false });
    const out: number[][] = [];
    for (let start = 0; start < samples; start += 64) {
      throwIfCancelled(signal);
      const idx = Array.from({ length: Math.min(64, samples - start) }, (_, i) => start + i);
      const t = (await runner.run(calib.take(idx), binding, [runner.outputNames[0]]))[runner.outputNames[0]];
      const dims = t.dims.map(Number);
      if (dims.length !== 2 || dims[0] !== idx.length)
        throw new OtfuseError('UNSUPPORTED', `refit mix: the output '${runner.outputNames[0]}' is [${dims}], not [batch, classes]`, { file: model.file });
      const data = t.data as Float32Array,
        c = dims[1];
      for (let i = 0; i < idx.length; i++) {
        const row = data.subarray(i * c, (i + 1) * c);
        const max = Math.max(...row);
        const e = Array.from(row, (v) => Math.exp(v - max));
        const s = e.reduce((a, b) => a + b, 0);
        out.push(e.map((v) => v / s));
      }
    }
    return out;
  } finally {
    await runner.release();
  }
}

/** w_k(x) per model k (anchor first) and sample x < samples; undefined for 'uniform'. */
export async function refitSampleWeights(input: {
  mix: RefitMix;
  models: OnnxModel[];
  alpha: number[];
  calib: Dataset;
  samples: number;
  provider?: ProviderChoice;
  signal?: AbortSignal;
}): Promise<Float64Array[] | undefined> {
  const { mix, models, alpha, calib } = input;
  if (mix === 'uniform') return undefined;
  const samples = Math.min(input.samples, calib.size);
  if (mix === 'label' && (calib.labelsPerSample ?? 1) !== 1)
    throw new OtfuseError('UNSUPPORTED', "refit mix 'label' needs one label per calibration sample", { file: calib.source });
  const score: number[][] = [];
  for (const m of models) {
    const p = await probabilities(m, calib, samples, input.provider, input.signal);
    score.push(p.map((row, x) => (mix === 'label' ? (row[calib.labels[x]] ?? 0) : Math.max(...row))));
  }
  const w = models.map(() => new Float64Array(samples));
  for (let x = 0; x < samples; x++) {
    let z = 0;
    for (let k = 0; k < models.length; k++) z += alpha[k] * score[k][x];
    for (let k = 0; k < models.length; k++) w[k][x] = z > 0 ? score[k][x] / z : 1; // no parent gives the label any probability: uniform
  }
  return w;
}

/**
 * Rows of an augmented block scaled by w(sample)^power (power 1: cross products, ½: Grams); `rows` are the kept
 * rows' indices in the block (null: all), `tokens` rows per sample, `start` the block's first sample.
 */
export function weighRows(X: Float32Array, width: number, rows: readonly number[] | null, tokens: number, start: number, w: Float64Array, power: 1 | 0.5) {
  const out = new Float32Array(X.length);
  const count = X.length / width;
  for (let r = 0; r < count; r++) {
    const sample = start + Math.floor((rows ? rows[r] : r) / tokens);
    const f = power === 1 ? w[sample] : Math.sqrt(w[sample]);
    for (let j = 0; j < width; j++) out[r * width + j] = X[r * width + j] * f;
  }
  return out;
}
