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
import { linearAssignment } from '../../ot';
import { captureDecoder, type DecoderActs } from './capture';
import { CostEngine } from '../cost';
import { applyMaps, decoderRules, type DecoderMaps, type HeadMap } from './symmetry';
import { buildDecoder, readDecoder, type DecoderParent } from './parent';
import { checkSameTokenizer } from './tokenizer-check';

export { buildDecoder, readDecoder, type DecoderParent };

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

/** At most this many calibration tokens feed a cost matrix (evenly spaced when there are more). */
export const DECODER_TOKEN_BUDGET = 8192;

/** [samples, n] (row-major) → [n, kept samples]: neuron-major, every `stride`-th sample. */
function neuronMajor(A: Float32Array, n: number, samples: number): { X: Float32Array; d: number } {
  const stride = Math.max(1, Math.ceil(samples / DECODER_TOKEN_BUDGET));
  const d = Math.ceil(samples / stride);
  const X = new Float32Array(n * d);
  for (let s = 0, k = 0; s < samples; s += stride, k++) for (let i = 0; i < n; i++) X[i * d + k] = A[s * n + i];
  return { X, d };
}

/** Squared distances between the columns of A and B ([samples, n] each): C[i, j] = Σ_s (A[s,i] − B[s,j])²; the Gram
 * product runs in ONNX Runtime when large (worker/fusion/cost.ts). */
export async function columnCost(costs: CostEngine, A: Float32Array, B: Float32Array, n: number, samples: number): Promise<Float64Array> {
  const x = neuronMajor(A, n, samples);
  const y = neuronMajor(B, n, samples);
  return (await costs.cost(x.X, y.X, n, n, x.d, { metric: 'sqeuclidean', normalize: 'none' })).cost;
}

const assign = (C: Float64Array, n: number): Int32Array => Int32Array.from(linearAssignment(C, n).rowToCol);

/** Whole-head alignment from the per-coordinate cost of the attention context (heads·d wide). Two heads cost the
 * best matching of their coordinates (V/O coordinates are free inside a head). GQA: a group cost is the best matching
 * of its query heads; groups are matched on it, then query heads inside the matched groups. Last, the V coordinates
 * of each KV head are matched (one order shared by the query heads of its group: they read the same V). */
export function alignHeads(C: Float64Array, heads: number, kvHeads: number, hd: number): HeadMap {
  const W = heads * hd;
  const block = (i: number, j: number) => {
    const sub = new Float64Array(hd * hd);
    for (let k = 0; k < hd; k++) for (let q = 0; q < hd; q++) sub[k * hd + q] = C[(i * hd + k) * W + j * hd + q];
    return sub;
  };
  const headCost = new Float64Array(heads * heads);
  for (let i = 0; i < heads; i++) for (let j = 0; j < heads; j++) headCost[i * heads + j] = linearAssignment(block(i, j), hd).cost;
  const rep = heads / kvHeads;
  const inner = (ga: number, gb: number) => {
    const sub = new Float64Array(rep * rep);
    for (let i = 0; i < rep; i++) for (let j = 0; j < rep; j++) sub[i * rep + j] = headCost[(ga * rep + i) * heads + gb * rep + j];
    const r = linearAssignment(sub, rep);
    return { cost: r.cost, order: r.rowToCol };
  };
  const groupCost = new Float64Array(kvHeads * kvHeads);
  for (let a = 0; a < kvHeads; a++) for (let b = 0; b < kvHeads; b++) groupCost[a * kvHeads + b] = inner(a, b).cost;
  const kvOrder = assign(groupCost, kvHeads);
  const headOrder = new Int32Array(heads);
  const vCoords = new Int32Array(kvHeads * hd);
  for (let a = 0; a < kvHeads; a++) {
    const { order } = inner(a, kvOrder[a]);
    const shared = new Float64Array(hd * hd);
    for (let i = 0; i < rep; i++) {
      headOrder[a * rep + i] = kvOrder[a] * rep + order[i];
      const sub = block(a * rep + i, headOrder[a * rep + i]);
      for (let k = 0; k < shared.length; k++) shared[k] += sub[k];
    }
    const within = assign(shared, hd);
    for (let k = 0; k < hd; k++) vCoords[a * hd + k] = kvOrder[a] * hd + within[k];
  }
  return { headOrder, kvOrder, vCoords };
}

/** The maps that carry B onto A, from their activations on the same calibration tokens. */
export async function decoderMaps(c: DecoderConfig, A: DecoderActs, B: DecoderActs): Promise<DecoderMaps> {
  const H = c.hidden;
  const hd = H / c.heads;
  const costs = await CostEngine.create();
  try {
    const resid = assign(await columnCost(costs, A.resid, B.resid, H, A.residSamples), H);
    const heads: HeadMap[] = [];
    const mlp: Int32Array[] = [];
    for (let l = 0; l < c.layers; l++) {
      heads.push(alignHeads(await columnCost(costs, A.heads[l], B.heads[l], H, A.samples), c.heads, c.kvHeads, hd));
      mlp.push(assign(await columnCost(costs, A.mlp[l], B.mlp[l], c.intermediate, A.samples), c.intermediate));
    }
    return { resid, heads, mlp };
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

/** Averages A with B aligned by `maps` (identity maps: vanilla averaging). `weight` is A's share. */
export function averageAligned(a: DecoderParent, b: DecoderParent, maps: DecoderMaps, weight = 0.5): Map<string, Float32Array> {
  const aligned = applyMaps(b.config, b.tensors, maps);
  const out = new Map<string, Float32Array>();
  for (const rules of decoderRules(a.config)) {
    for (const { key } of rules) {
      const x = a.tensors.get(key)!.data;
      const y = aligned.get(key)!;
      out.set(
        key,
        Float32Array.from(x, (v, i) => weight * v + (1 - weight) * y[i]),
      );
    }
  }
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
    const actsB = await captureDecoder(b, options.calibration, options.blockLength);
    // The cost knows no file: a failure (e.g. non-finite activations) leaves naming the folder being aligned.
    maps = await decoderMaps(a.config, actsA, actsB).catch((err: unknown) => {
      throw withContext(err, { file: b.dir }, `aligning onto ${a.dir}`);
    });
  }
  const tensors = averageAligned(a, b, maps, options.weight);
  return { model: buildDecoder(a, tensors), maps, tensors };
}
