// Test helpers for fusion: a functionally identical, neuron-permuted copy of a fixture ViT (built from the
// ONNX node names of the fixture export, independently of the graph analysis under test), logits of a model on
// a fixed batch, and graph surgery for bad-input cases.
import { onnx } from 'onnx-proto';
import { OnnxModel } from '../../worker/onnx/model';
import { ModelRunner } from '../../worker/runtime/runner';
import type { Dataset } from '../../worker/data/dataset';
import { seededRandom as rng } from '../../worker/random';

export { seededRandom as rng } from '../../worker/random';

export function randomPerm(n: number, rand: () => number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/**
 * Head-structured permutation: heads shuffled by `hp`, and the dimensions inside each (new) head shuffled.
 * Q, K, V and O must share `hp` (head h's scores weight head h's values); the in-head dims of Q/K and of V/O
 * are independent.
 */
export function headPerm(hp: number[], dim: number, rand: () => number): number[] {
  const heads = hp.length;
  const out: number[] = [];
  for (let h = 0; h < heads; h++) {
    const dp = randomPerm(dim, rand);
    for (let d = 0; d < dim; d++) out.push(hp[h] * dim + dp[d]);
  }
  return out;
}

/** new[..., j, ...] = old[..., p[j], ...] along `axis` of a row-major tensor. */
export function permuteAxis(data: Float32Array, dims: number[], axis: number, p: number[]): Float32Array {
  const out = new Float32Array(data.length);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const n = dims[axis];
  const outer = data.length / (inner * n);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < n; j++) {
      const src = (o * n + p[j]) * inner,
        dst = (o * n + j) * inner;
      out.set(data.subarray(src, src + inner), dst);
    }
  }
  return out;
}

function weightOf(model: OnnxModel, nodeName: string, slot = 1): string {
  const n = model.nodes.find((x) => x.name === nodeName);
  if (!n) throw new Error(`no node ${nodeName}`);
  return n.input![slot];
}

/** Bias initializer feeding the Add right after a MatMul node. */
function biasAfter(model: OnnxModel, matmul: string): string {
  const out = model.nodes.find((x) => x.name === matmul)!.output![0];
  const add = model.nodes.find((x) => x.opType === 'Add' && x.input!.includes(out))!;
  return add.input!.find((i) => i !== out)!;
}

type PermuteFn = (name: string, axis: number, p: number[]) => void;

/**
 * The linear layers of one encoder block (HF naming in the exported node paths; MatMul weights are [in, out]):
 * Q/K/V take the residual permutation on their input side and the head permutation on their output side, O the
 * reverse, fc1/fc2 the residual and MLP permutations. ViT and BERT differ only in the Q/K/V node prefix.
 */
function permuteBlockLinears(
  m: OnnxModel,
  P: PermuteFn,
  qkvPrefix: string,
  pre: string,
  p: { resid: number[]; qk: number[]; vo: number[]; mlp: number[] },
): void {
  for (const [proj, perm] of [
    ['query', p.qk],
    ['key', p.qk],
    ['value', p.vo],
  ] as const) {
    const mm = `${qkvPrefix}/${proj}/MatMul`;
    P(weightOf(m, mm), 0, p.resid);
    P(weightOf(m, mm), 1, perm);
    P(biasAfter(m, mm), 0, perm);
  }
  const o = `${pre}/attention/output/dense/MatMul`;
  P(weightOf(m, o), 0, p.vo);
  P(weightOf(m, o), 1, p.resid);
  P(biasAfter(m, o), 0, p.resid);
  const fc1 = `${pre}/intermediate/dense/MatMul`,
    fc2 = `${pre}/output/dense/MatMul`;
  P(weightOf(m, fc1), 0, p.resid);
  P(weightOf(m, fc1), 1, p.mlp);
  P(biasAfter(m, fc1), 0, p.mlp);
  P(weightOf(m, fc2), 0, p.mlp);
  P(weightOf(m, fc2), 1, p.resid);
  P(biasAfter(m, fc2), 0, p.resid);
}

export interface PermutedCopy {
  model: OnnxModel;
  perms: { resid: number[]; blocks: { qk: number[]; vo: number[]; mlp: number[] }[] };
}

/** Permutes the residual stream, every MLP hidden layer, the heads and the dims inside each head (Q/K and V/O consistently). */
export function permutedCopy(model: OnnxModel, seed: number, cfg = { hidden: 48, heads: 4, mlp: 192, layers: 3 }): PermutedCopy {
  const rand = rng(seed);
  const m = model.clone();
  const P = (name: string, axis: number, p: number[]) => {
    const i = m.getInitializer(name);
    m.setInitializer(name, permuteAxis(i.data, i.dims, axis, p), i.dims);
  };
  const resid = randomPerm(cfg.hidden, rand);
  const emb = '/vit/embeddings/patch_embeddings/projection/Conv';
  P(weightOf(m, emb, 1), 0, resid);
  P(weightOf(m, emb, 2), 0, resid);
  P('vit.embeddings.cls_token', 2, resid);
  P('vit.embeddings.position_embeddings', 2, resid);
  const blocks: PermutedCopy['perms']['blocks'] = [];
  const hd = cfg.hidden / cfg.heads;
  for (let l = 0; l < cfg.layers; l++) {
    const pre = `/vit/encoder/layer.${l}`;
    const hp = randomPerm(cfg.heads, rand);
    const qk = headPerm(hp, hd, rand);
    const vo = headPerm(hp, hd, rand);
    const mlp = randomPerm(cfg.mlp, rand);
    blocks.push({ qk, vo, mlp });
    for (const ln of ['layernorm_before', 'layernorm_after']) {
      P(`vit.encoder.layer.${l}.${ln}.weight`, 0, resid);
      P(`vit.encoder.layer.${l}.${ln}.bias`, 0, resid);
    }
    permuteBlockLinears(m, P, `${pre}/attention/attention`, pre, { resid, qk, vo, mlp });
  }
  P('vit.layernorm.weight', 0, resid);
  P('vit.layernorm.bias', 0, resid);
  P('classifier.weight', 1, resid); // Gemm transB: [classes, hidden]
  return { model: m, perms: { resid, blocks } };
}

export async function logitsOf(model: OnnxModel, data: Dataset, count: number): Promise<Float32Array> {
  const runner = await ModelRunner.create(model, { provider: 'cpu' });
  try {
    const binding = runner.bind(data);
    const batch = data.take(Array.from({ length: Math.min(count, data.size) }, (_, i) => i));
    const out = await runner.run(batch, binding, [runner.outputNames[0]]);
    return new Float32Array(out[runner.outputNames[0]].data as Float32Array);
  } finally {
    await runner.release();
  }
}

/** A Constant node holding an int64 vector (for graph surgery). */
export function int64Constant(name: string, values: number[]): onnx.NodeProto {
  const t = onnx.TensorProto.create({
    dims: [values.length],
    dataType: onnx.TensorProto.DataType.INT64,
    rawData: new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer),
    name: `${name}_value`,
  });
  return onnx.NodeProto.create({
    opType: 'Constant',
    name,
    output: [`${name}_out`],
    attribute: [onnx.AttributeProto.create({ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t })],
  });
}

/**
 * The same for the BERT fixtures (post-LN, embedding tables, pooler): residual stream, heads and in-head dims,
 * MLP hidden layers and the pooler's outputs permuted; logits unchanged.
 */
export function permutedBertCopy(model: OnnxModel, seed: number, cfg = { hidden: 64, heads: 4, mlp: 256, layers: 2 }): OnnxModel {
  const rand = rng(seed);
  const m = model.clone();
  const P = (name: string, axis: number, p: number[]) => {
    const i = m.getInitializer(name);
    m.setInitializer(name, permuteAxis(i.data, i.dims, axis, p), i.dims);
  };
  const resid = randomPerm(cfg.hidden, rand);
  for (const t of ['word', 'position', 'token_type']) P(`bert.embeddings.${t}_embeddings.weight`, 1, resid);
  P('bert.embeddings.LayerNorm.weight', 0, resid);
  P('bert.embeddings.LayerNorm.bias', 0, resid);
  const hd = cfg.hidden / cfg.heads;
  for (let l = 0; l < cfg.layers; l++) {
    const pre = `/bert/encoder/layer.${l}`;
    const hp = randomPerm(cfg.heads, rand);
    const qk = headPerm(hp, hd, rand),
      vo = headPerm(hp, hd, rand),
      mlp = randomPerm(cfg.mlp, rand);
    permuteBlockLinears(m, P, `${pre}/attention/self`, pre, { resid, qk, vo, mlp });
    for (const ln of ['attention.output.LayerNorm', 'output.LayerNorm']) {
      P(`bert.encoder.layer.${l}.${ln}.weight`, 0, resid);
      P(`bert.encoder.layer.${l}.${ln}.bias`, 0, resid);
    }
  }
  const pool = randomPerm(cfg.hidden, rand);
  P('bert.pooler.dense.weight', 1, resid); // Gemm transB: [out, in]
  P('bert.pooler.dense.weight', 0, pool);
  P('bert.pooler.dense.bias', 0, pool);
  P('classifier.weight', 1, pool);
  return m;
}
