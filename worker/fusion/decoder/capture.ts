// Activations of a decoder LM on calibration token blocks, for its alignment: the residual stream where every
// norm reads it (one map for the whole stream), each attention layer's context (the input of o_proj / c_proj:
// heads·head_dim coordinates) and each MLP's hidden neurons (the input of down_proj / c_proj). The tensors are found
// by the node names the HF importer gives (worker/hf/build-decoder.ts) and added as graph outputs.
import { OtfuseError } from '../../errors';
import type { OnnxModel } from '../../onnx/model';
import { createOrtSession, ortTensor } from '../../runtime/session';
import { parentModel, type DecoderParent } from './parent';

export interface DecoderActs {
  /** [residSamples, hidden], row-major: every residual read point stacked. */
  resid: Float32Array;
  residSamples: number;
  /** Per layer: [samples, hidden] attention context. */
  heads: Float32Array[];
  /** Per layer: [samples, intermediate] MLP neurons. */
  mlp: Float32Array[];
  /** Calibration tokens (blocks × block length). */
  samples: number;
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

export async function captureDecoder(p: DecoderParent, blocks: Int32Array, T: number, batch = 8): Promise<DecoderActs> {
  const model = parentModel(p);
  const points = readPoints(p);
  const names = {
    resid: points.resid.map((n) => inputOf(model, n)),
    heads: points.heads.map((n) => inputOf(model, n)),
    mlp: points.mlp.map((n) => inputOf(model, n)),
  };
  const all = [...names.resid, ...names.heads, ...names.mlp];
  model.addOutputs(all);
  const n = blocks.length / T;
  if (!Number.isInteger(n) || n < 1) throw new OtfuseError('BAD_DATA', `calibration tokens (${blocks.length}) are not whole blocks of ${T}`);
  const samples = n * T;
  const H = p.config.hidden;
  const I = p.config.intermediate;
  const resid = names.resid.map(() => new Float32Array(samples * H));
  const heads = names.heads.map(() => new Float32Array(samples * H));
  const mlp = names.mlp.map(() => new Float32Array(samples * I));
  const session = await createOrtSession(model.toBytes(), { threads: 1 });
  try {
    for (let start = 0; start < n; start += batch) {
      const rows = Math.min(batch, n - start);
      const ids = BigInt64Array.from(blocks.subarray(start * T, (start + rows) * T), (v) => BigInt(v));
      const out = await session.run({ input_ids: ortTensor('int64', ids, [rows, T]) }, all);
      const put = (targets: Float32Array[], tensorNames: string[]) =>
        tensorNames.forEach((name, i) => targets[i].set(out[name].data as Float32Array, start * T * (targets[i].length / samples)));
      put(resid, names.resid);
      put(heads, names.heads);
      put(mlp, names.mlp);
    }
  } finally {
    await session.release();
  }
  const stacked = new Float32Array(resid.length * samples * H);
  resid.forEach((r, i) => stacked.set(r, i * samples * H));
  return { resid: stacked, residSamples: resid.length * samples, heads, mlp, samples };
}
