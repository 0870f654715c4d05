// OT fusion of two decoder LMs (GPT-2 or Llama family, Hugging Face folders of the same shape and tokenizer),
// respecting their symmetries (symmetry.ts): activations captured on calibration text give one residual-stream
// map for the whole model, one whole-head map per attention layer (GQA: KV heads matched as groups, query heads
// matched inside the matched groups) and one neuron map per MLP; exact OT between uniform measures of equal size
// is an assignment (solved exactly with worker/ot's linearAssignment). The second model is permuted onto the first
// and the weights averaged; the result is rebuilt through the HF importer, so it is a checkpoint in the first
// parent's layout (keys, config).
import { OtfuseError, withContext } from '../../errors';
import { type DecoderConfig } from '../../hf/config-decoder';
import type { OnnxModel } from '../../onnx/model';
import { captureDecoder, type ActGroup, type DecoderActs } from './capture';
import { CostEngine } from '../cost';
import { forEachAligned, type DecoderMaps } from './symmetry';
import { alignHeads, solveDecoderSchedule } from '../steps/decoder';
import { buildDecoder, readDecoder, type DecoderParent } from './parent';
import { checkSameTokenizer } from './tokenizer-check';

export { buildDecoder, readDecoder, type DecoderParent };
export { DECODER_TOKEN_BUDGET } from './capture';

/** Same architecture, sizes and vocabulary; otherwise refused with the reason. */
export function checkCompatible(a: Pick<DecoderParent, 'dir' | 'config'>, b: Pick<DecoderParent, 'dir' | 'config'>): void {
  const fields = [
    'family',
    'hidden',
    'layers',
    'heads',
    'kvHeads',
    'intermediate',
    'maxPositions',
    'ropeTheta',
    'tied',
    'qkvBias',
    'oBias',
    'mlpBias',
  ] as const;
  if (a.config.vocab !== b.config.vocab)
    throw new OtfuseError(
      'MISMATCH',
      `the vocabularies differ (${a.config.vocab} vs ${b.config.vocab} tokens): decoder LMs can be fused only when they share a tokenizer`,
      { file: b.dir },
    );
  for (const f of fields) {
    if (a.config[f] !== b.config[f])
      throw new OtfuseError('MISMATCH', `config.json differs from the first model's in ${f} (${String(a.config[f])} vs ${String(b.config[f])})`, {
        file: b.dir,
      });
  }
  checkSameTokenizer(a.dir, b.dir);
}

/** Squared distances between the neurons of two groups of activations (same calibration tokens): C[i, j] =
 * Σ_s (A[i, s] − B[j, s])² over the kept samples; the Gram product runs in ONNX Runtime when large
 * (worker/fusion/cost.ts). Each group is read back from its spool when its map is solved. */
export async function groupCost(costs: CostEngine, A: DecoderActs, B: DecoderActs, group: ActGroup): Promise<{ C: Float64Array; n: number }> {
  const x = A.features(group);
  const y = B.features(group);
  if (x.n !== y.n || x.d !== y.d) throw new OtfuseError('MISMATCH', `decoder activations '${group}' differ in shape (${x.n}×${x.d} vs ${y.n}×${y.d})`);
  return { C: (await costs.cost(x.X, y.X, x.n, y.n, x.d, { metric: 'sqeuclidean', normalize: 'none' })).cost, n: x.n };
}

export { alignHeads };

/** The maps that carry B onto A, from their activations on the same calibration tokens. */
export async function decoderMaps(c: DecoderConfig, A: DecoderActs, B: DecoderActs): Promise<DecoderMaps> {
  const costs = await CostEngine.create();
  try {
    return await solveDecoderSchedule({
      config: c,
      cost: async (group: ActGroup) => (await groupCost(costs, A, B, group)).C,
      maps: { heads: [], mlp: [] },
    });
  } finally {
    await costs.release();
  }
}

export interface DecoderFusion {
  model: OnnxModel;
  maps: DecoderMaps;
  /** Float32 tensors of the fused checkpoint, by key. */
  tensors: Map<string, Float32Array>;
}

/** Averages A with B aligned by `maps` (identity maps: vanilla averaging). `weight` is A's share. One tensor at a
 * time: B's aligned copy is never held whole. */
export function averageAligned(a: DecoderParent, b: DecoderParent, maps: DecoderMaps, weight = 0.5): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  forEachAligned(b.config, b.tensors, maps, (key, y) => {
    const x = a.tensors.get(key)!.data;
    const z = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) z[i] = weight * x[i] + (1 - weight) * y[i];
    out.set(key, z);
  });
  return out;
}

export function identityMaps(c: DecoderConfig): DecoderMaps {
  const id = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
  return {
    resid: id(c.hidden),
    heads: Array.from({ length: c.layers }, () => ({ headOrder: id(c.heads), kvOrder: id(c.kvHeads) })),
    mlp: Array.from({ length: c.layers }, () => id(c.intermediate)),
  };
}

export interface DecoderFuseOptions {
  /** Calibration token blocks [n, T] (int32, row-major). */
  calibration: Int32Array;
  blockLength: number;
  /** 'ot' (aligned) or 'vanilla' (plain average). */
  method?: 'ot' | 'vanilla';
  weight?: number;
}

export async function fuseDecoders(dirA: string, dirB: string, options: DecoderFuseOptions): Promise<DecoderFusion> {
  const a = readDecoder(dirA);
  const b = readDecoder(dirB);
  checkCompatible(a, b);
  return fuseParents(a, b, options);
}

export async function fuseParents(a: DecoderParent, b: DecoderParent, options: DecoderFuseOptions): Promise<DecoderFusion> {
  let maps = identityMaps(a.config);
  if ((options.method ?? 'ot') === 'ot') {
    const actsA = await captureDecoder(a, options.calibration, options.blockLength);
    try {
      const actsB = await captureDecoder(b, options.calibration, options.blockLength);
      try {
        // The cost knows no file: a failure (e.g. non-finite activations) leaves naming the folder being aligned.
        maps = await decoderMaps(a.config, actsA, actsB).catch((err: unknown) => {
          throw withContext(err, { file: b.dir }, `aligning onto ${a.dir}`);
        });
      } finally {
        actsB.release();
      }
    } finally {
      actsA.release();
    }
  }
  const tensors = averageAligned(a, b, maps, options.weight);
  return { model: buildDecoder(a, tensors), maps, tensors };
}
