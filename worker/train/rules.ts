// The context a gradient rule (gradients.ts) works in: the step graph's builder, the forward tensors' shapes and
// constant values, and the shared backward pieces (broadcast reductions, GELU, layer norm, convolution …).
import { onnx } from 'onnx-proto';
import { OtfuseError } from '../errors';
import { A, DT, GraphBuilder, makeTensor } from './builder';
import type { TensorInfo } from './probe';

function attr(n: onnx.INodeProto, name: string): onnx.IAttributeProto | undefined {
  return (n.attribute ?? []).find((a) => a.name === name);
}

export function attrInt(n: onnx.INodeProto, name: string, fallback: number): number {
  const a = attr(n, name);
  return a && a.i !== undefined && a.i !== null ? Number(a.i) : fallback;
}

function attrFloat(n: onnx.INodeProto, name: string, fallback: number): number {
  const a = attr(n, name);
  return a && a.type === onnx.AttributeProto.AttributeType.FLOAT ? Number(a.f) : fallback;
}

export function attrInts(n: onnx.INodeProto, name: string): number[] | undefined {
  const a = attr(n, name);
  return a ? (a.ints ?? []).map(Number) : undefined;
}

export function inversePerm(perm: number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => {
    inv[p] = i;
  });
  return inv;
}

/** The backward rules; each returns one gradient (or undefined) per forward input. */
export class RuleContext {
  constructor(
    readonly b: GraphBuilder,
    readonly info: Map<string, TensorInfo>,
    readonly consts: Map<string, number[]>,
    readonly file: string,
  ) {}

  dims(t: string): number[] {
    const i = this.info.get(t);
    if (!i) throw new OtfuseError('INTERNAL', `no probed shape for tensor '${t}'`, { file: this.file });
    return i.dims;
  }

  dtype(t: string): number {
    return this.info.get(t)?.dataType ?? DT.FLOAT;
  }

  unsupported(n: onnx.INodeProto, why: string): never {
    throw new OtfuseError('UNSUPPORTED', `cannot differentiate op '${n.opType}': ${why}`, { file: this.file, node: n.name || (n.output ?? [])[0] });
  }

  constOf(n: onnx.INodeProto, name: string, what: string): number[] {
    const v = this.consts.get(name);
    if (!v) this.unsupported(n, `${what} must be a constant`);
    return v;
  }

  /**
   * Sums a gradient of shape `gdims` (a broadcast result) back to the shape of an operand of shape `xdims`:
   * over the extra leading axes and over axes where the operand has size 1.
   */
  reduceTo(g: string, gdims: number[], x: string, xdims = this.dims(x)): string {
    const lead = gdims.length - xdims.length;
    const axes: number[] = [];
    for (let i = 0; i < gdims.length; i++) {
      if (i < lead || (xdims[i - lead] === 1 && gdims[i] !== 1)) axes.push(i);
    }
    if (axes.length === 0) return lead === 0 ? g : this.b.reshape(g, this.b.shape(x));
    const r = this.b.reduce('ReduceSum', g, axes, true);
    return lead === 0 ? r : this.b.reshape(r, this.b.shape(x));
  }

  scalarLike(value: number, t: string): string {
    return this.b.scalar(value, this.dtype(t));
  }

  /** d/dx [h · x · (1 + erf(x/√2))] = h · (1 + erf(x/√2)) + h · x · √(2/π) · exp(−x²/2). */
  geluGrad(x: string, onePlusErf: string, gy: string, half: number): string {
    const b = this.b;
    const gauss = b.op('Exp', [b.op('Mul', [b.op('Mul', [x, x]), this.scalarLike(-0.5, x)])]);
    const slope = b.op('Add', [
      b.op('Mul', [onePlusErf, this.scalarLike(half, x)]),
      b.op('Mul', [b.op('Mul', [x, gauss]), this.scalarLike(half * Math.sqrt(2 / Math.PI), x)]),
    ]);
    return b.op('Mul', [gy, slope]);
  }

  softmaxAxis(n: onnx.INodeProto, rank: number): number {
    const opset = this.b.opset;
    const axis = (attrInt(n, 'axis', opset >= 13 ? -1 : 1) + rank) % rank;
    // Before opset 13 Softmax flattened to 2-D around `axis`; that matches the per-axis rule only for the last axis.
    if (opset < 13 && axis !== rank - 1) this.unsupported(n, 'opset < 13 Softmax over a non-last axis');
    return axis;
  }

  reduceGrad(n: onnx.INodeProto, gy: string): string {
    const b = this.b;
    const ins = n.input ?? [];
    const x = ins[0];
    const rank = this.dims(x).length;
    const keepdims = attrInt(n, 'keepdims', 1) === 1;
    let axes: number[] | undefined = attrInts(n, 'axes');
    if (!axes && ins[1]) axes = this.constOf(n, ins[1], 'axes');
    if (!axes || axes.length === 0) {
      if (attrInt(n, 'noop_with_empty_axes', 0) === 1) return gy;
      axes = Array.from({ length: rank }, (_, i) => i);
    }
    axes = axes.map((a) => (a + rank) % rank).sort((p, q) => p - q);
    const g = keepdims ? gy : b.unsqueeze(gy, axes);
    const expanded = b.op('Expand', [g, b.shape(x)]);
    if (n.opType === 'ReduceSum') return expanded;
    const count = b.op('ReduceProd', [b.op('Gather', [b.shape(x), b.i64(axes)], { axis: A.i(0) })], { keepdims: A.i(0) });
    return b.op('Div', [expanded, b.op('Cast', [count], { to: A.i(this.dtype(x)) })]);
  }

  /** MatMul with numpy semantics: rank-1 operands are promoted, batch dims broadcast. */
  matmulGrad(a: string, bm: string, gy: string, want: boolean[]): (string | undefined)[] {
    const b = this.b;
    let adims = this.dims(a);
    let bdims = this.dims(bm);
    let A2 = a;
    let B2 = bm;
    let g = gy;
    if (bdims.length === 1) {
      B2 = b.unsqueeze(bm, [1]);
      bdims = [bdims[0], 1];
      g = b.unsqueeze(g, [-1]);
    }
    if (adims.length === 1) {
      A2 = b.unsqueeze(a, [0]);
      adims = [1, adims[0]];
      g = b.unsqueeze(g, [-2]);
    }
    const batch = broadcastDims(adims.slice(0, -2), bdims.slice(0, -2));
    const m = adims[adims.length - 2];
    const k = adims[adims.length - 1];
    const nn = bdims[bdims.length - 1];
    const swap = (r: number) => [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
    let da: string | undefined;
    let db: string | undefined;
    if (want[0]) {
      const raw = bdims.length === 2 ? b.op('MatMul', [g, b.transpose(B2, [1, 0])]) : b.op('MatMul', [g, b.transpose(B2, swap(bdims.length))]);
      da = this.reduceTo(raw, [...batch, m, k], a, this.dims(a).length === 1 ? adims : this.dims(a));
      if (this.dims(a).length === 1) da = b.reshape(da, b.shape(a));
    }
    if (want[1]) {
      if (bdims.length === 2) {
        // The common "activations × weight" case: fold all batch dims into one Gemm (no per-batch results to sum).
        const a2 = b.reshape(A2, b.i64([-1, k]));
        const g2 = b.reshape(g, b.i64([-1, nn]));
        db = b.op('Gemm', [a2, g2], { transA: A.i(1) });
      } else {
        const raw = b.op('MatMul', [b.transpose(A2, swap(adims.length)), g]);
        db = this.reduceTo(raw, [...batch, k, nn], bm, bdims);
      }
      if (this.dims(bm).length === 1) db = b.reshape(db, b.shape(bm));
    }
    return [da, db];
  }

  gemmGrad(n: onnx.INodeProto, gy: string, want: boolean[]): (string | undefined)[] {
    const b = this.b;
    const [a, bm, c] = n.input ?? [];
    const alpha = attrFloat(n, 'alpha', 1);
    const beta = attrFloat(n, 'beta', 1);
    const ta = attrInt(n, 'transA', 0);
    const tb = attrInt(n, 'transB', 0);
    const gemm = (p: string, q: string, tp: number, tq: number) => b.op('Gemm', [p, q], { alpha: A.f(alpha), transA: A.i(tp), transB: A.i(tq) });
    let da: string | undefined;
    let db: string | undefined;
    // op(A)·op(B) = Y: d op(A) = dY·op(B)ᵀ, d op(B) = op(A)ᵀ·dY, then undo the transposes.
    if (want[0]) da = ta ? gemm(bm, gy, tb ? 1 : 0, 1) : gemm(gy, bm, 0, tb ? 0 : 1);
    if (want[1]) db = tb ? gemm(gy, a, 1, ta ? 1 : 0) : gemm(a, gy, ta ? 0 : 1, 0);
    let dc: string | undefined;
    if (c && want[2]) {
      const g = beta === 1 ? gy : b.op('Mul', [gy, this.scalarLike(beta, c)]);
      dc = this.reduceTo(g, this.dims(n.output![0]), c);
    }
    return [da, db, dc];
  }

  layerNormGrad(n: onnx.INodeProto, gy: string, want: boolean[]): (string | undefined)[] {
    const b = this.b;
    const [x, scale, bias] = n.input ?? [];
    const rank = this.dims(x).length;
    const axis = (attrInt(n, 'axis', -1) + rank) % rank;
    const eps = attrFloat(n, 'epsilon', 1e-5);
    const axes = Array.from({ length: rank - axis }, (_, i) => axis + i);
    const ydims = this.dims(n.output![0]);
    let rstd: string;
    let xhat: string;
    if (this.dtype(x) === DT.FLOAT && attrInt(n, 'stash_type', 1) === 1) {
      // float32: the forward node saves its Mean and InvStdDev (optional outputs), nothing is recomputed.
      const outs = n.output!;
      if (!outs[1]) outs[1] = b.fresh('ln_mean');
      if (!outs[2]) outs[2] = b.fresh('ln_invstd');
      rstd = outs[2];
      xhat = b.op('Mul', [b.op('Sub', [x, outs[1]]), rstd]);
    } else {
      // Other types: the saved statistics would be float32 (stash_type), so recompute them in x's type.
      const mu = b.reduce('ReduceMean', x, axes, true);
      const xc = b.op('Sub', [x, mu]);
      const variance = b.reduce('ReduceMean', b.op('Mul', [xc, xc]), axes, true);
      rstd = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [variance, this.scalarLike(eps, x)])])]);
      xhat = b.op('Mul', [xc, rstd]);
    }
    let dx: string | undefined;
    if (want[0]) {
      const dxhat = b.op('Mul', [gy, scale]);
      const m1 = b.reduce('ReduceMean', dxhat, axes, true);
      const m2 = b.reduce('ReduceMean', b.op('Mul', [dxhat, xhat]), axes, true);
      dx = b.op('Mul', [rstd, b.op('Sub', [b.op('Sub', [dxhat, m1]), b.op('Mul', [xhat, m2])])]);
    }
    const dscale = want[1] ? this.reduceTo(b.op('Mul', [gy, xhat]), ydims, scale) : undefined;
    const dbias = bias && want[2] ? this.reduceTo(gy, ydims, bias) : undefined;
    return [dx, dscale, dbias];
  }

  /**
   * Gradient of Gather(data, idx, axis) for data of shape `dataShape` (a tensor): scatter-add of the output
   * gradient into zeros (repeated indices accumulate), done on axis 0 after moving `axis` to the front.
   */
  gatherGrad(gy: string, dataShape: string, idx: string, axis: number, rank: number, idxRank: number, dataType: number): string {
    const b = this.b;
    let index = b.op('Cast', [idx], { to: A.i(DT.INT64) });
    const dim = b.op('Slice', [dataShape, b.i64([axis]), b.i64([axis + 1])]);
    index = b.op('Where', [b.op('Less', [index, b.i64([0], true)]), b.op('Add', [index, dim]), index]);
    const permData = [axis, ...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis)];
    const yRank = rank - 1 + idxRank;
    const idxAxes = Array.from({ length: idxRank }, (_, i) => axis + i);
    const permY = [...idxAxes, ...Array.from({ length: yRank }, (_, i) => i).filter((i) => i < axis || i >= axis + idxRank)];
    const isIdentity = (p: number[]) => p.every((v, i) => v === i);
    const gyT = isIdentity(permY) ? gy : b.transpose(gy, permY);
    const shapeT = isIdentity(permData) ? dataShape : b.op('Gather', [dataShape, b.i64(permData)], { axis: A.i(0) });
    const rest = b.op('Slice', [shapeT, b.i64([1]), b.i64([rank])]);
    const upd = b.reshape(gyT, b.op('Concat', [b.i64([-1]), rest], { axis: A.i(0) }));
    const ind = b.reshape(index, b.i64([-1, 1]));
    const zeros = b.op('ConstantOfShape', [shapeT], { value: A.t(makeTensor('', dataType, [1], [0])) });
    const s = b.op('ScatterND', [zeros, ind, upd], { reduction: A.s('add') });
    return isIdentity(permData) ? s : b.transpose(s, inversePerm(permData));
  }

  /** Slice = one Gather per sliced axis with the indices Slice picks from 0..dim−1; undone in reverse. */
  sliceGrad(n: onnx.INodeProto, gy: string): string {
    const b = this.b;
    const ins = n.input ?? [];
    const x = ins[0];
    const dims = this.dims(x);
    const rank = dims.length;
    let starts: string;
    let ends: string;
    let axes: number[];
    let steps: string | undefined;
    if (this.b.opset < 10) {
      const st = attrInts(n, 'starts') ?? [];
      starts = b.i64(st);
      ends = b.i64(attrInts(n, 'ends') ?? []);
      axes = attrInts(n, 'axes') ?? st.map((_, i) => i);
    } else {
      starts = ins[1];
      ends = ins[2];
      const count = this.dims(ins[1])[0];
      axes = ins[3] ? this.constOf(n, ins[3], 'axes') : Array.from({ length: count }, (_, i) => i);
      steps = ins[4] || undefined;
    }
    axes = axes.map((a) => (a + rank) % rank);
    let shape = b.shape(x);
    const stages: { shape: string; idx: string; axis: number }[] = [];
    axes.forEach((axis, j) => {
      const pick = (t: string) => b.op('Cast', [b.op('Slice', [t, b.i64([j]), b.i64([j + 1])])], { to: A.i(DT.INT64) });
      const dim = b.op('Gather', [shape, b.i64([axis], true)], { axis: A.i(0) });
      const range = b.op('Range', [b.i64([0], true), dim, b.i64([1], true)]);
      const sliceIns = [range, pick(starts), pick(ends), b.i64([0])];
      if (steps) sliceIns.push(pick(steps));
      const idx = b.op('Slice', sliceIns);
      stages.push({ shape, idx, axis });
      shape = b.op('Concat', [b.op('Slice', [shape, b.i64([0]), b.i64([axis])]), b.shape(idx), b.op('Slice', [shape, b.i64([axis + 1]), b.i64([rank])])], {
        axis: A.i(0),
      });
    });
    let g = gy;
    for (let j = stages.length - 1; j >= 0; j--) g = this.gatherGrad(g, stages[j].shape, stages[j].idx, stages[j].axis, rank, 1, this.dtype(x));
    return g;
  }

  /** Conv as patch extraction + matrix product; only the non-overlapping case (stride = kernel, no padding). */
  convGrad(n: onnx.INodeProto, gy: string, want: boolean[]): (string | undefined)[] {
    const b = this.b;
    const [x, w, bias] = n.input ?? [];
    const xd = this.dims(x);
    const wd = this.dims(w);
    const yd = this.dims(n.output![0]);
    if (xd.length !== 4) this.unsupported(n, 'only 2-D convolutions are supported');
    const [O, C, kh, kw] = wd;
    const strides = attrInts(n, 'strides') ?? [1, 1];
    const pads = attrInts(n, 'pads') ?? [0, 0, 0, 0];
    const dil = attrInts(n, 'dilations') ?? [1, 1];
    const autoPad = attr(n, 'auto_pad')?.s ? new TextDecoder().decode(attr(n, 'auto_pad')!.s!) : 'NOTSET';
    if (
      attrInt(n, 'group', 1) !== 1 ||
      strides[0] !== kh ||
      strides[1] !== kw ||
      pads.some((p) => p !== 0) ||
      dil.some((d) => d !== 1) ||
      (autoPad !== 'NOTSET' && autoPad !== 'VALID')
    ) {
      this.unsupported(n, 'only Conv with stride = kernel, no padding, no dilation and one group is supported');
    }
    const [H, W] = [xd[2], xd[3]];
    const [Ho, Wo] = [yd[2], yd[3]];
    const cropped = H !== Ho * kh || W !== Wo * kw;
    const gyT = b.reshape(b.transpose(gy, [0, 2, 3, 1]), b.i64([-1, O]));
    let dx: string | undefined;
    let dw: string | undefined;
    if (want[1]) {
      const xc = cropped ? b.op('Slice', [x, b.i64([0, 0]), b.i64([Ho * kh, Wo * kw]), b.i64([2, 3])]) : x;
      const patches = b.reshape(b.transpose(b.reshape(xc, b.i64([-1, C, Ho, kh, Wo, kw])), [0, 2, 4, 1, 3, 5]), b.i64([-1, C * kh * kw]));
      dw = b.reshape(b.op('Gemm', [gyT, patches], { transA: A.i(1) }), b.i64(wd));
    }
    if (want[0]) {
      const dp = b.op('MatMul', [gyT, b.reshape(w, b.i64([O, C * kh * kw]))]);
      dx = b.reshape(b.transpose(b.reshape(dp, b.i64([-1, Ho, Wo, C, kh, kw])), [0, 3, 1, 4, 2, 5]), b.i64([-1, C, Ho * kh, Wo * kw]));
      if (cropped) dx = b.op('Pad', [dx, b.i64([0, 0, 0, 0, 0, 0, H - Ho * kh, W - Wo * kw])]);
    }
    const db = bias && want[2] ? b.reduce('ReduceSum', gy, [0, 2, 3], false) : undefined;
    return [dx, dw, db];
  }
}

function broadcastDims(p: number[], q: number[]): number[] {
  const r = Math.max(p.length, q.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const a = p[p.length - r + i] ?? 1;
    const c = q[q.length - r + i] ?? 1;
    out.push(a === 1 ? c : a);
  }
  return out;
}
