// Building blocks every pattern uses: linear layers (MatMul [+ bias] / Gemm), LayerNorms (fused or
// decomposed), data-movement chains and residual joins.
import type { NodeProto } from '../../onnx/model';
import { GraphIndex, SHAPE_OPS, numel } from '../ir';
import type { LinearRef, NormRef } from '../plan';

/** Elementwise ops an activation may use between two projections (GELU in any form, ReLU, tanh, ...). */
export const ELEMENTWISE_ACT = new Set([
  'Div',
  'Mul',
  'Add',
  'Sub',
  'Erf',
  'Tanh',
  'Pow',
  'Sigmoid',
  'Relu',
  'Gelu',
  'FastGelu',
  'Sqrt',
  'Neg',
  'Softplus',
  'Identity',
  'Cast',
  'Exp',
  'HardSigmoid',
  'Dropout',
]);

/** A learned tensor broadcast to the batch (Expand/Tile), as exporters write the CLS token. */
export function paramThroughBroadcast(g: GraphIndex, tensor: string): string | undefined {
  let t = tensor;
  for (let guard = 0; guard < 4; guard++) {
    const p = g.paramName(t);
    if (p) return p;
    const n = g.producer.get(t);
    if (!n || !['Expand', 'Tile', 'Identity', 'Cast', 'Reshape', 'Unsqueeze'].includes(n.opType ?? '')) return undefined;
    t = n.input![0];
  }
  return undefined;
}

/** Follows a tensor through pure data-movement ops while it has a single consumer. */
export function followShapes(g: GraphIndex, tensor: string): string {
  let t = tensor;
  for (let guard = 0; guard < 8; guard++) {
    const cons = g.dataConsumers(t);
    if (cons.length !== 1 || !SHAPE_OPS.has(cons[0].opType ?? '')) return t;
    t = cons[0].output![0];
  }
  return t;
}

/** MatMul(x, W) [+ Add(b)] or Gemm(x, W, b) consuming `x`. */
export function matchLinearAt(g: GraphIndex, n: NodeProto, x: string, placed?: Set<string>): LinearRef | undefined {
  if (n.opType === 'MatMul' && n.input![0] === x) {
    let weight = g.paramName(n.input![1]);
    let outIn = false;
    if (!weight) {
      // Exports without constant folding keep nn.Linear's weight [out, in] behind a Transpose node.
      const t = g.producer.get(n.input![1]);
      const perm = t?.opType === 'Transpose' ? g.attrInts(t, 'perm') : undefined;
      const inner = t?.opType === 'Transpose' ? g.paramName(t.input![0]) : undefined;
      if (!inner || (perm && perm.join() !== '1,0')) return undefined;
      weight = inner;
      outIn = true;
    }
    const stored = g.paramDims(weight);
    if (stored.length !== 2) return undefined;
    const d = outIn ? [stored[1], stored[0]] : stored; // [in, out]
    let out = n.output![0];
    let bias: string | undefined;
    const next = g.dataConsumers(out);
    if (next.length === 1 && next[0].opType === 'Add') {
      const other = next[0].input![0] === out ? next[0].input![1] : next[0].input![0];
      const b = g.paramName(other);
      if (b && numel(g.paramDims(b)) === d[1]) {
        bias = b;
        out = next[0].output![0];
      }
    }
    placed?.add(weight);
    if (bias) placed?.add(bias);
    return { node: n.name ?? '', weight, bias, outIn, inDim: d[0], outDim: d[1], out };
  }
  if (n.opType === 'Gemm' && n.input![0] === x) {
    const weight = g.paramName(n.input![1]);
    if (!weight) return undefined;
    if ((g.attrInt(n, 'transA') ?? 0) !== 0) throw g.unsupported(n, 'Gemm with transA=1');
    const alpha = g.attrFloat(n, 'alpha');
    const beta = g.attrFloat(n, 'beta');
    if ((alpha !== undefined && alpha !== 1) || (beta !== undefined && beta !== 1 && n.input![2])) throw g.unsupported(n, 'Gemm with alpha/beta other than 1');
    const d = g.paramDims(weight);
    const outIn = (g.attrInt(n, 'transB') ?? 0) === 1;
    const bias = n.input![2] ? g.paramName(n.input![2]) : undefined;
    placed?.add(weight);
    if (bias) placed?.add(bias);
    return { node: n.name ?? '', weight, bias, outIn, inDim: outIn ? d[1] : d[0], outDim: outIn ? d[0] : d[1], out: n.output![0] };
  }
  return undefined;
}

export function linearsOf(g: GraphIndex, x: string, placed?: Set<string>): LinearRef[] {
  const out: LinearRef[] = [];
  for (const n of g.dataConsumers(x)) {
    const l = matchLinearAt(g, n, x, placed);
    if (l) out.push(l);
  }
  return out;
}

/** LayerNormalization op, or the decomposed ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add form. */
export function matchNorm(g: GraphIndex, x: string, placed?: Set<string>): NormRef | undefined {
  const cons = g.dataConsumers(x);
  const ln = cons.find((n) => n.opType === 'LayerNormalization' || n.opType === 'SimplifiedLayerNormalization');
  if (ln) {
    const axis = g.attrInt(ln, 'axis') ?? -1;
    if (axis !== -1) throw g.unsupported(ln, `LayerNormalization over axis ${axis} (only the last axis can carry a map)`);
    const scale = ln.input![1] ? g.paramName(ln.input![1]) : undefined;
    const bias = ln.input![2] ? g.paramName(ln.input![2]) : undefined;
    if (scale) placed?.add(scale);
    if (bias) placed?.add(bias);
    return { node: ln.name ?? '', form: 'LayerNormalization', scale, bias, out: ln.output![0] };
  }
  const mean = cons.find((n) => n.opType === 'ReduceMean');
  const sub = cons.find((n) => n.opType === 'Sub' && n.input![0] === x && mean && n.input![1] === mean.output![0]);
  if (!mean || !sub) return undefined;
  const d = sub.output![0];
  const div = g.dataConsumers(d).find((n) => n.opType === 'Div' && n.input![0] === d);
  if (!div) throw g.unsupported(sub, 'decomposed LayerNorm without the Div by the standard deviation');
  let out = div.output![0];
  let scale: string | undefined;
  let bias: string | undefined;
  const mul = g.dataConsumers(out).find((n) => n.opType === 'Mul');
  if (mul) {
    const other = mul.input![0] === out ? mul.input![1] : mul.input![0];
    scale = g.paramName(other);
    if (scale) out = mul.output![0];
  }
  const add = g.dataConsumers(out).find((n) => n.opType === 'Add');
  if (add && scale) {
    const other = add.input![0] === out ? add.input![1] : add.input![0];
    const b = g.paramName(other);
    if (b && numel(g.paramDims(b)) === numel(g.paramDims(scale))) {
      bias = b;
      out = add.output![0];
    }
  }
  if (scale) placed?.add(scale);
  if (bias) placed?.add(bias);
  return { node: mean.name ?? '', form: 'decomposed', scale, bias, out };
}

export function firstConsumer(g: GraphIndex, t: string): NodeProto | undefined {
  return g.dataConsumers(t)[0] ?? g.producer.get(t);
}

/** The Add that joins a branch output with the skip path `skip`. */
export function residualAdd(g: GraphIndex, branch: string, skip: string): NodeProto {
  const b = followShapes(g, branch);
  const add = g.dataConsumers(b).find((n) => n.opType === 'Add' && (n.input ?? []).includes(skip));
  if (!add) {
    const next = g.dataConsumers(b)[0];
    throw g.unsupported(next ?? g.producer.get(b), 'expected a residual Add joining this branch with the block input');
  }
  return add;
}

export function isDownstreamOf(g: GraphIndex, t: string, root: string, depth = 0): boolean {
  if (t === root) return true;
  if (depth > 10) return false;
  const p = g.producer.get(t);
  if (!p) return false;
  return (p.input ?? []).some((i) => i && isDownstreamOf(g, i, root, depth + 1));
}
