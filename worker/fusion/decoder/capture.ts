// Activations of a decoder LM on calibration token blocks, for its alignment: the residual stream where every
// norm reads it (one map for the whole stream), each attention layer's context (the input of o_proj / c_proj:
// heads·head_dim coordinates) and each MLP's hidden neurons (the input of down_proj / c_proj). The tensors are found
// by the node names the HF importer gives (worker/hf/build-decoder.ts); the LM head is not computed.
//
// Bounded memory: a cost matrix reads at most DECODER_TOKEN_BUDGET tokens of a group (evenly spaced), so only those
// rows are kept, and they go to a temp-file spool batch by batch (a 124M GPT-2's MLP neurons alone are 100 MB per
// layer at 8192 tokens); a group's features are read back, neuron-major, when its map is solved. A batch holds as
// many blocks as keep one stage's outputs under CAPTURE_BATCH_BYTES.
import type * as Ort from 'onnxruntime-node';
import { OtfuseError } from '../../errors';
import type { OnnxModel } from '../../onnx/model';
import { Spool } from '../../onnx/spool';
import { createOrtSession, ortTensor } from '../../runtime/session';
import { planStages, stageModel } from '../stages';
import { parentModel, type DecoderParent } from './parent';

/** At most this many calibration tokens feed a cost matrix (evenly spaced when there are more). */
export const DECODER_TOKEN_BUDGET = 8192;
/** The outputs of one capture batch stay under this many bytes (at least one block per batch). */
export const CAPTURE_BATCH_BYTES = 64 * 2 ** 20;

/** A group of activations one map is solved from: 'resid' (every residual read point stacked), 'heads.l', 'mlp.l'. */
export type ActGroup = 'resid' | `heads.${number}` | `mlp.${number}`;

interface Chunk {
  at: number;
  /** First neuron-major column (kept sample index) and number of kept rows. */
  col: number;
  rows: number;
}

interface GroupState {
  /** Neurons (columns of each captured tensor). */
  n: number;
  /** Kept samples (columns of the neuron-major features) and the spacing of the kept rows. */
  d: number;
  stride: number;
  chunks: Chunk[];
}

/** One model's spooled activations on the calibration tokens. */
export class DecoderActs {
  private readonly spool = new Spool('otfuse-decoder-acts.spool');
  private readonly groups = new Map<ActGroup, GroupState>();
  /** Bytes written to the spool (kept rows only). */
  spooledBytes = 0;

  constructor(
    /** Calibration tokens (blocks × block length). */
    readonly samples: number,
  ) {}

  declare(group: ActGroup, n: number, total: number): void {
    const stride = Math.max(1, Math.ceil(total / DECODER_TOKEN_BUDGET));
    this.groups.set(group, { n, d: Math.ceil(total / stride), stride, chunks: [] });
  }

  /** Rows `first`… (global sample index within the group) of a [rows, n] output; keeps every stride-th. */
  add(group: ActGroup, data: Float32Array, first: number): void {
    const g = this.groups.get(group)!;
    const rows = data.length / g.n;
    const col = Math.ceil(first / g.stride);
    const kept: number[] = [];
    for (let s = col * g.stride; s < first + rows; s += g.stride) kept.push(s - first);
    if (!kept.length) return;
    const out = new Float32Array(kept.length * g.n);
    kept.forEach((r, k) => out.set(data.subarray(r * g.n, (r + 1) * g.n), k * g.n));
    g.chunks.push({ at: this.spool.appendArray(out), col, rows: kept.length });
    this.spooledBytes += out.byteLength;
  }

  /** The group's features, neuron-major [n, d] (row i: neuron i over the kept samples). */
  features(group: ActGroup): { X: Float32Array; n: number; d: number } {
    const g = this.groups.get(group);
    if (!g) throw new OtfuseError('INTERNAL', `no decoder activations '${group}'`);
    const { n, d } = g;
    const X = new Float32Array(n * d);
    for (const c of g.chunks) {
      const part = this.spool.readArray(Float32Array, c.rows * n, c.at, group);
      for (let r = 0; r < c.rows; r++) for (let i = 0; i < n; i++) X[i * d + c.col + r] = part[r * n + i];
    }
    return { X, n, d };
  }

  release(): void {
    this.spool.release();
  }
}

/** The node names whose first input is read, per role. */
function readPoints(p: DecoderParent): { resid: string[]; heads: string[]; mlp: string[] } {
  const L = p.config.layers;
  const layers = Array.from({ length: L }, (_, l) => l);
  if (p.config.family === 'gpt2') {
    const s = (l: number) => `/transformer/h.${l}`;
    return {
      resid: [...layers.flatMap((l) => [`${s(l)}/ln_1/LayerNormalization`, `${s(l)}/ln_2/LayerNormalization`]), '/transformer/ln_f/LayerNormalization'],
      heads: layers.map((l) => `${s(l)}/attn/c_proj/MatMul`),
      mlp: layers.map((l) => `${s(l)}/mlp/c_proj/MatMul`),
    };
  }
  const s = (l: number) => `/model/layers.${l}`;
  return {
    resid: [...layers.flatMap((l) => [`${s(l)}/input_layernorm/Mul`, `${s(l)}/post_attention_layernorm/Mul`]), '/model/norm/Mul'],
    heads: layers.map((l) => `${s(l)}/self_attn/o_proj/MatMul`),
    mlp: layers.map((l) => `${s(l)}/mlp/down_proj/MatMul`),
  };
}

function inputOf(model: OnnxModel, node: string): string {
  const n = model.nodes.find((x) => x.name === node);
  if (!n || !n.input?.[0]) throw new OtfuseError('BAD_MODEL', `the decoder graph has no node '${node}'`, { file: model.file });
  return n.input[0];
}

/** Each captured tensor: its name in the graph, its group, its neurons and its index within the group. */
interface Point {
  tensor: string;
  group: ActGroup;
  n: number;
  index: number;
}

/** The read points, and per block the tensors its stage must hand out (the last stage also the final norm's input). */
function capturePoints(p: DecoderParent, model: OnnxModel): { points: Point[]; targets: string[][] } {
  const read = readPoints(p);
  const H = p.config.hidden;
  const L = p.config.layers;
  const resid = read.resid.map((node, index) => ({ tensor: inputOf(model, node), group: 'resid' as ActGroup, n: H, index }));
  const heads = read.heads.map((node, l) => ({ tensor: inputOf(model, node), group: `heads.${l}` as ActGroup, n: H, index: 0 }));
  const mlp = read.mlp.map((node, l) => ({ tensor: inputOf(model, node), group: `mlp.${l}` as ActGroup, n: p.config.intermediate, index: 0 }));
  const targets = Array.from({ length: L }, (_, l) =>
    [resid[2 * l], resid[2 * l + 1], heads[l], mlp[l], ...(l === L - 1 ? [resid[2 * L]] : [])].map((x) => x.tensor),
  );
  return { points: [...resid, ...heads, ...mlp], targets };
}

/**
 * Staged: the graph is cut into one subgraph per block (worker/fusion/stages.ts; the embedding goes with the first,
 * the LM head with none), each run as its own session over every batch and released before the next, fed the
 * residual stream (and the mask / positions) the earlier stages handed on. ONNX Runtime so holds one block's weights
 * at a time, and the kept rows of each read point go to the spool as they come.
 */
export async function captureDecoder(p: DecoderParent, blocks: Int32Array, T: number, maxBatch = 8): Promise<DecoderActs> {
  const n = blocks.length / T;
  if (!Number.isInteger(n) || n < 1) throw new OtfuseError('BAD_DATA', `calibration tokens (${blocks.length}) are not whole blocks of ${T}`);
  const samples = n * T;
  const model = parentModel(p);
  const { points, targets } = capturePoints(p, model);
  const byTensor = new Map(points.map((pt) => [pt.tensor, pt]));
  const acts = new DecoderActs(samples);
  for (const pt of points) if (pt.index === 0) acts.declare(pt.group, pt.n, samples * points.filter((q) => q.group === pt.group).length);
  const plan = planStages(model, targets);
  const perBlock = T * 4 * Math.max(...targets.map((ts) => ts.reduce((s, t) => s + byTensor.get(t)!.n, 0) + 2 * p.config.hidden));
  const batch = Math.max(1, Math.min(maxBatch, Math.floor(CAPTURE_BATCH_BYTES / perBlock)));
  const later = new Set(plan.parts.flatMap((part) => part.liveIns));
  /** Tensors later stages read, one per batch. */
  const cache = new Map<string, Ort.Tensor[]>();
  try {
    for (const part of plan.parts) {
      const types = new Map([...part.liveIns].map((t) => [t, { type: cache.get(t)![0].type, dims: cache.get(t)![0].dims }]));
      const session = await createOrtSession(stageModel(model, part, types).toBytes(), { threads: 1 });
      try {
        for (let start = 0, b = 0; start < n; start += batch, b++) {
          const rows = Math.min(batch, n - start);
          const feeds: Record<string, Ort.Tensor> = {};
          for (const t of part.graphInputs)
            feeds[t] = ortTensor(
              'int64',
              BigInt64Array.from(blocks.subarray(start * T, (start + rows) * T), (v) => BigInt(v)),
              [rows, T],
            );
          for (const t of part.liveIns) feeds[t] = cache.get(t)![b];
          const out = await session.run(feeds, part.outputs);
          for (const t of part.outputs) if (later.has(t)) (cache.get(t) ?? cache.set(t, []).get(t)!).push(out[t]);
          for (const t of targets[part.index]) {
            const pt = byTensor.get(t)!;
            acts.add(pt.group, (out[t] ?? feeds[t]).data as Float32Array, pt.index * samples + start * T);
          }
        }
      } finally {
        await session.release();
      }
      for (const t of part.release) cache.delete(t);
    }
  } catch (err) {
    acts.release();
    throw err;
  }
  return acts;
}
