// The gradient rules of worker/train/autodiff.ts as a table: one entry per ONNX op with the inputs a gradient
// flows into and the backward nodes it emits (tinygrad's pm_gradient, micrograd's _backward beside its forward).
// Adding an op gradient = one entry here (+ a case in test/train/opgrad.test.ts); supportedOps() lists the keys.
import type { onnx } from 'onnx-proto';
import { A, makeTensor, type GraphBuilder } from './builder';
import { attrInt, attrInts, inversePerm, type RuleContext } from './rules';

/** What a gradient rule sees of one forward node. */
export interface RuleArgs {
  n: onnx.INodeProto;
  /** Gradient of the node's (first) output. */
  gy: string;
  /** Multi-output ops (rule.multiOutput): the gradient of each output, undefined where none flows. */
  gys?: (string | undefined)[];
  /** Per input: whether its gradient is needed. */
  want: boolean[];
  b: GraphBuilder;
  ins: string[];
  y: string;
  ydims: number[];
  x0: string;
  x1: string;
  op: string;
}

export interface GradientRule {
  /** Indices of the inputs a gradient flows into, given the input count. */
  inputs(count: number): number[];
  grad(c: RuleContext, a: RuleArgs): (string | undefined)[];
  /** The op has several outputs whose gradients the rule combines (RuleArgs.gys). */
  multiOutput?: boolean;
}

const ALL = (count: number) => Array.from({ length: count }, (_, i) => i);
const UP_TO_3 = (count: number) => Array.from({ length: Math.min(count, 3) }, (_, i) => i);

/** One rule registered under each of `ops`. */
function rule(...args: [...string[], number[] | ((count: number) => number[]), GradientRule['grad']]): Record<string, GradientRule> {
  const grad = args.pop() as GradientRule['grad'];
  const spec = args.pop() as number[] | ((count: number) => number[]);
  const inputs = typeof spec === 'function' ? spec : () => spec;
  return Object.fromEntries((args as string[]).map((op) => [op, { inputs, grad }]));
}

/** Which inputs of an op a gradient flows into (from the rule table; ops without a rule: the first). */
export function differentiableInputs(op: string, inputCount: number): number[] {
  return Object.prototype.hasOwnProperty.call(GRADIENTS, op) ? GRADIENTS[op].inputs(inputCount) : [0];
}

/**
 * The gradient rules, one entry per op (tinygrad's pm_gradient, micrograd's _backward): which inputs a gradient
 * flows into (others are shapes, indices, conditions) and the backward nodes that turn the output's gradient into
 * the inputs' gradients (one per forward input, undefined where none is wanted). The supported-op list is this
 * table's keys.
 */
export const GRADIENTS: Record<string, GradientRule> = {
  // Split: the outputs' gradients (zeros where none flows) joined along the split axis.
  Split: {
    inputs: () => [0],
    multiOutput: true,
    grad: (ctx, { n, gys, want, b, ins }) => {
      if (!want[0]) return [];
      const rank = ctx.dims(ins[0]).length;
      const axis = (attrInt(n, 'axis', 0) + rank) % rank;
      const outs = n.output ?? [];
      const parts = outs.map((o, i) => gys?.[i] ?? b.op('ConstantOfShape', [b.shape(o)], { value: A.t(makeTensor('', ctx.dtype(o), [1], [0])) }));
      return [b.op('Concat', parts, { axis: A.i(axis) })];
    },
  },
  ...rule('Add', ALL, (ctx, { gy, want, ydims, x0, x1 }) => {
    return [want[0] ? ctx.reduceTo(gy, ydims, x0) : undefined, want[1] ? ctx.reduceTo(gy, ydims, x1) : undefined];
  }),
  ...rule('Sub', ALL, (ctx, { gy, want, b, ydims, x0, x1 }) => {
    return [want[0] ? ctx.reduceTo(gy, ydims, x0) : undefined, want[1] ? ctx.reduceTo(b.op('Neg', [gy]), ydims, x1) : undefined];
  }),
  ...rule('Sum', ALL, (ctx, { gy, want, ins, ydims }) => {
    return ins.map((x, i) => (want[i] ? ctx.reduceTo(gy, ydims, x) : undefined));
  }),
  // Mean (partial fusion's averaged branch logits): each input gets the output's gradient / the input count.
  ...rule('Mean', ALL, (ctx, { gy, want, b, ins, ydims, x0 }) => {
    const share = b.op('Mul', [gy, b.scalar(1 / ins.length, ctx.dtype(x0))]);
    return ins.map((x, i) => (want[i] ? ctx.reduceTo(share, ydims, x) : undefined));
  }),
  ...rule('Mul', ALL, (ctx, { gy, want, b, ydims, x0, x1 }) => {
    return [want[0] ? ctx.reduceTo(b.op('Mul', [gy, x1]), ydims, x0) : undefined, want[1] ? ctx.reduceTo(b.op('Mul', [gy, x0]), ydims, x1) : undefined];
  }),
  ...rule('Div', ALL, (ctx, { gy, want, b, y, ydims, x0, x1 }) => {
    return [
      want[0] ? ctx.reduceTo(b.op('Div', [gy, x1]), ydims, x0) : undefined,
      // d(a/b)/db = −y/b
      want[1] ? ctx.reduceTo(b.op('Neg', [b.op('Div', [b.op('Mul', [gy, y]), x1])]), ydims, x1) : undefined,
    ];
  }),
  ...rule('Pow', [0, 1], (ctx, { n, gy, want, b, ydims, x0, x1 }) => {
    if (want[1]) ctx.unsupported(n, 'the exponent depends on trainable tensors');
    const c = b.op('Cast', [x1], { to: A.i(ctx.dtype(x0)) });
    const cm1 = b.op('Sub', [c, ctx.scalarLike(1, x0)]);
    const g = b.op('Mul', [gy, b.op('Mul', [c, b.op('Pow', [x0, cm1])])]);
    return [ctx.reduceTo(g, ydims, x0)];
  }),
  ...rule('Sqrt', [0], (ctx, { gy, b, y }) => {
    return [b.op('Div', [b.op('Mul', [gy, ctx.scalarLike(0.5, y)]), y])];
  }),
  ...rule('Reciprocal', [0], (_ctx, { gy, b, y }) => {
    return [b.op('Neg', [b.op('Mul', [gy, b.op('Mul', [y, y])])])];
  }),
  ...rule('Neg', [0], (_ctx, { gy, b }) => {
    return [b.op('Neg', [gy])];
  }),
  ...rule('Exp', [0], (_ctx, { gy, b, y }) => {
    return [b.op('Mul', [gy, y])];
  }),
  ...rule('Log', [0], (_ctx, { gy, b, x0 }) => {
    return [b.op('Div', [gy, x0])];
  }),
  ...rule('Erf', [0], (ctx, { gy, b, x0 }) => {
    // d erf(x)/dx = 2/√π · exp(−x²)
    const e = b.op('Exp', [b.op('Neg', [b.op('Mul', [x0, x0])])]);
    return [b.op('Mul', [gy, b.op('Mul', [e, ctx.scalarLike(2 / Math.sqrt(Math.PI), x0)])])];
  }),
  ...rule('Tanh', [0], (ctx, { gy, b, y }) => {
    return [b.op('Mul', [gy, b.op('Sub', [ctx.scalarLike(1, y), b.op('Mul', [y, y])])])];
  }),
  ...rule('Sigmoid', [0], (ctx, { gy, b, y }) => {
    return [b.op('Mul', [gy, b.op('Mul', [y, b.op('Sub', [ctx.scalarLike(1, y), y])])])];
  }),
  ...rule('Relu', [0], (ctx, { gy, b, x0 }) => {
    return [b.op('Where', [b.op('Greater', [x0, ctx.scalarLike(0, x0)]), gy, ctx.scalarLike(0, x0)])];
  }),
  ...rule('Identity', [0], (_ctx, { gy }) => {
    return [gy];
  }),
  ...rule('Dropout', [0], (_ctx, { gy }) => {
    // Inference graphs run dropout as identity (training_mode is not set).
    return [gy];
  }),
  ...rule('Cast', [0], (ctx, { gy, b, x0 }) => {
    return [b.op('Cast', [gy], { to: A.i(ctx.dtype(x0)) })];
  }),
  ...rule('Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', [0], (_ctx, { gy, b, x0 }) => {
    return [b.reshape(gy, b.shape(x0))];
  }),
  ...rule('Expand', [0], (ctx, { gy, ydims, x0 }) => {
    return [ctx.reduceTo(gy, ydims, x0)];
  }),
  ...rule('Transpose', [0], (_ctx, { n, gy, b, ydims }) => {
    const perm = attrInts(n, 'perm') ?? ydims.map((_, i) => ydims.length - 1 - i);
    return [b.transpose(gy, inversePerm(perm))];
  }),
  ...rule('Where', [1, 2], (ctx, { gy, want, b, ins, y, ydims, x0, x1 }) => {
    const zero = ctx.scalarLike(0, y);
    return [
      undefined,
      want[1] ? ctx.reduceTo(b.op('Where', [x0, gy, zero]), ydims, x1) : undefined,
      want[2] ? ctx.reduceTo(b.op('Where', [x0, zero, gy]), ydims, ins[2]) : undefined,
    ];
  }),
  ...rule('Softmax', 'LogSoftmax', [0], (ctx, { n, gy, b, y, ydims, op }) => {
    const axis = ctx.softmaxAxis(n, ydims.length);
    if (op === 'Softmax') {
      const s = b.reduce('ReduceSum', b.op('Mul', [gy, y]), [axis], true);
      return [b.op('Mul', [y, b.op('Sub', [gy, s])])];
    }
    const s = b.reduce('ReduceSum', gy, [axis], true);
    return [b.op('Sub', [gy, b.op('Mul', [b.op('Exp', [y]), s])])];
  }),
  ...rule('ReduceMean', 'ReduceSum', [0], (ctx, { n, gy }) => {
    return [ctx.reduceGrad(n, gy)];
  }),
  ...rule('Concat', ALL, (_ctx, { n, gy, want, b, ins, ydims }) => {
    const rank = ydims.length;
    const axis = (attrInt(n, 'axis', 0) + rank) % rank;
    const sizes = ins.map((x) => b.op('Slice', [b.shape(x), b.i64([axis]), b.i64([axis + 1])]));
    const parts = b.node('Split', [gy, b.op('Concat', sizes, { axis: A.i(0) })], { axis: A.i(axis) }, ins.length);
    return parts.map((p, i) => (want[i] ? p : undefined));
  }),
  ...rule('MatMul', ALL, (ctx, { gy, want, x0, x1 }) => {
    return ctx.matmulGrad(x0, x1, gy, want);
  }),
  ...rule('Gemm', UP_TO_3, (ctx, { n, gy, want }) => {
    return ctx.gemmGrad(n, gy, want);
  }),
  ...rule('LayerNormalization', UP_TO_3, (ctx, { n, gy, want }) => {
    return ctx.layerNormGrad(n, gy, want);
  }),
  ...rule('Gather', [0], (ctx, { n, gy, b, x0, x1 }) => {
    const dims = ctx.dims(x0);
    const axis = (attrInt(n, 'axis', 0) + dims.length) % dims.length;
    return [ctx.gatherGrad(gy, b.shape(x0), x1, axis, dims.length, ctx.dims(x1).length, ctx.dtype(x0))];
  }),
  ...rule('Slice', [0], (ctx, { n, gy }) => {
    return [ctx.sliceGrad(n, gy)];
  }),
  ...rule('Conv', UP_TO_3, (ctx, { n, gy, want }) => {
    return ctx.convGrad(n, gy, want);
  }),
};
