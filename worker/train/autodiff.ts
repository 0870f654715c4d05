// Reverse-mode differentiation of ONNX inference graphs: for each forward node on the path from the
// trainable tensors to the loss, emits backward nodes (plain ONNX ops) that turn the gradient of its output
// into gradients of its inputs. Shapes come from a probe run (see probe.ts): ranks and broadcast axes are
// static, every batch-dependent size is read with Shape() at run time, so the graphs keep a dynamic batch.
import { onnx } from 'onnx-proto';
import { OtfuseError } from '../errors';
import { OnnxModel, tensorToFloat32 } from '../onnx/model';
import { A, DT, GraphBuilder, isFloatType, makeTensor } from './builder';
import type { TensorInfo } from './probe';
import { GRADIENTS, differentiableInputs } from './gradients';
import { attrInt, RuleContext } from './rules';

/** Ops whose outputs never carry a gradient (shape arithmetic, comparisons, index computations). */
const NON_DIFFERENTIABLE = new Set([
  'Constant',
  'Shape',
  'Size',
  'ConstantOfShape',
  'Range',
  'NonZero',
  'OneHot',
  'EyeLike',
  'Equal',
  'Less',
  'LessOrEqual',
  'Greater',
  'GreaterOrEqual',
  'Not',
  'And',
  'Or',
  'Xor',
  'ArgMax',
  'ArgMin',
  'IsNaN',
  'IsInf',
  'Sign',
  'Floor',
  'Ceil',
  'Round',
  'RandomNormal',
  'RandomUniform',
  'RandomNormalLike',
  'RandomUniformLike',
  'Bernoulli',
]);

export function supportedOps(): string[] {
  return Object.keys(GRADIENTS).sort();
}

export interface BackwardOptions {
  model: OnnxModel;
  info: Map<string, TensorInfo>;
  builder: GraphBuilder;
  /** Tensors to differentiate with respect to (initializers or graph inputs). */
  wrt: string[];
  /** Gradient of the loss with respect to forward outputs: forward tensor → tensor holding the gradient. */
  seeds: Map<string, string>;
  /**
   * The forward nodes as they will appear in the emitted graph (default: the model's). Rules may add
   * outputs to them to save intermediates (LayerNormalization's Mean/InvStdDev).
   */
  nodes?: onnx.INodeProto[];
}

/**
 * Emits the backward pass into `builder`; returns, for each `wrt` tensor, the tensor holding its gradient
 * (zeros when the loss does not depend on it).
 */
export function emitBackward(opts: BackwardOptions): Map<string, string> {
  const { model, info, builder: b, wrt } = opts;
  const nodes = opts.nodes ?? model.nodes;
  const file = model.file;
  const consts = constantValues(model);
  const consumers = new Map<string, number>();
  const producer = new Map<string, onnx.INodeProto>();
  for (const n of nodes) {
    for (const i of n.input ?? []) consumers.set(i, (consumers.get(i) ?? 0) + 1);
    for (const o of n.output ?? []) producer.set(o, n);
  }
  for (const o of model.graph.output ?? []) consumers.set(o.name ?? '', (consumers.get(o.name ?? '') ?? 0) + 1);

  // Forward sweep: which tensors depend on a wrt tensor (nodes are topologically sorted in ONNX).
  const active = new Set<string>(wrt);
  for (const n of nodes) {
    const op = n.opType ?? '';
    if (NON_DIFFERENTIABLE.has(op)) continue;
    const ins = n.input ?? [];
    if (!differentiableInputs(op, ins.length).some((i) => ins[i] && active.has(ins[i]))) continue;
    if (op === 'Cast' && !isFloatType(attrInt(n, 'to', 0))) continue;
    for (const o of n.output ?? []) if (o && isFloatType(info.get(o)?.dataType ?? DT.FLOAT)) active.add(o);
  }

  const grads = new Map<string, string[]>();
  const addGrad = (name: string, g: string | undefined) => {
    if (!g || !active.has(name)) return;
    const list = grads.get(name);
    if (list) list.push(g);
    else grads.set(name, [g]);
  };
  for (const [out, g] of opts.seeds) addGrad(out, g);

  const ctx = new RuleContext(b, info, consts, file);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k];
    const outs = n.output ?? [];
    if (!outs.some((o) => grads.has(o))) continue;
    const op = n.opType ?? '';
    if (!Object.prototype.hasOwnProperty.call(GRADIENTS, op)) {
      throw new OtfuseError('UNSUPPORTED', `cannot differentiate op '${op}' on the gradient path (supported: ${supportedOps().join(', ')})`, {
        file,
        node: n.name || outs[0],
      });
    }
    if (GRADIENTS[op].multiOutput) {
      // Several outputs (Split): the rule gets each output's gradient (undefined where none flows).
      const gys = outs.map((o) => (grads.has(o) ? b.sum(grads.get(o)!) : undefined));
      for (const o of outs) grads.delete(o);
      const ins = n.input ?? [];
      const want = ins.map((name) => !!name && active.has(name));
      const inGrads = applyRule(
        ctx,
        n,
        gys.find((g) => g !== undefined)!,
        want,
        gys,
      );
      ins.forEach((name, i) => {
        if (want[i]) addGrad(name, inGrads[i]);
      });
      continue;
    }
    for (let i = 1; i < outs.length; i++) {
      if (grads.has(outs[i])) throw new OtfuseError('UNSUPPORTED', `cannot differentiate output ${i} of op '${op}'`, { file, node: n.name || outs[0] });
    }
    const gy = b.sum(grads.get(outs[0])!);
    grads.delete(outs[0]);
    const gelu = op === 'Mul' ? matchGelu(n, producer, consumers, consts) : undefined;
    if (gelu) {
      // Exact-erf GELU exported as five nodes: one fused backward instead of five chained ones.
      addGrad(gelu.x, ctx.geluGrad(gelu.x, gelu.onePlusErf, gy, gelu.half));
      continue;
    }
    const ins = n.input ?? [];
    const want = ins.map((name) => !!name && active.has(name));
    const inGrads = applyRule(ctx, n, gy, want);
    ins.forEach((name, i) => {
      if (want[i]) addGrad(name, inGrads[i]);
    });
  }

  const result = new Map<string, string>();
  for (const w of wrt) {
    const list = grads.get(w);
    if (list) result.set(w, b.sum(list));
    else result.set(w, b.op('ConstantOfShape', [b.shape(w)], { value: A.t(makeTensor('', info.get(w)?.dataType ?? DT.FLOAT, [1], [0])) }));
  }
  return result;
}

interface GeluMatch {
  x: string;
  /** The forward tensor 1 + erf(x/√2). */
  onePlusErf: string;
  /** The final scale (0.5 in the usual export). */
  half: number;
}

/**
 * Recognises y = (x · (1 + erf(x / √2))) · 0.5 ending at `n` (PyTorch's exact GELU export), with every
 * intermediate used only inside the pattern (so skipping their individual gradients loses nothing).
 */
function matchGelu(
  n: onnx.INodeProto,
  producer: Map<string, onnx.INodeProto>,
  consumers: Map<string, number>,
  consts: Map<string, number[]>,
): GeluMatch | undefined {
  const scalar = (t: string) => {
    const v = consts.get(t);
    return v && v.length === 1 ? v[0] : undefined;
  };
  const only = (t: string) => consumers.get(t) === 1;
  const [a, b] = n.input ?? [];
  const half = scalar(b);
  const mul = producer.get(a);
  if (half === undefined || mul?.opType !== 'Mul' || !only(a)) return undefined;
  const [x, p] = mul.input ?? [];
  const add = producer.get(p);
  if (add?.opType !== 'Add' || !only(p) || scalar(add.input![1]) !== 1) return undefined;
  const erf = producer.get(add.input![0]);
  if (erf?.opType !== 'Erf' || !only(add.input![0])) return undefined;
  const div = producer.get(erf.input![0]);
  if (div?.opType !== 'Div' || !only(erf.input![0]) || div.input![0] !== x) return undefined;
  const root2 = scalar(div.input![1]);
  if (root2 === undefined || Math.abs(root2 - Math.SQRT2) > 1e-5) return undefined;
  return { x, onePlusErf: p, half };
}

/**
 * The subset of `candidates` the output actually depends on through differentiable inputs (a float
 * initializer used only as a mask or a shape is not a parameter: training it would only decay it).
 */
export function parametersOnGradientPath(model: OnnxModel, info: Map<string, TensorInfo>, candidates: string[], output: string): string[] {
  const active = new Set<string>(candidates);
  const nodes = model.nodes;
  for (const n of nodes) {
    const op = n.opType ?? '';
    const ins = n.input ?? [];
    if (NON_DIFFERENTIABLE.has(op) || !differentiableInputs(op, ins.length).some((i) => ins[i] && active.has(ins[i]))) continue;
    if (op === 'Cast' && !isFloatType(attrInt(n, 'to', 0))) continue;
    for (const o of n.output ?? []) if (o && isFloatType(info.get(o)?.dataType ?? DT.FLOAT)) active.add(o);
  }
  const needed = new Set<string>([output]);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k];
    if (!(n.output ?? []).some((o) => needed.has(o)) || NON_DIFFERENTIABLE.has(n.opType ?? '')) continue;
    const ins = n.input ?? [];
    for (const i of differentiableInputs(n.opType ?? '', ins.length)) if (ins[i] && active.has(ins[i])) needed.add(ins[i]);
  }
  return candidates.filter((c) => needed.has(c));
}

/** Values of constant tensors (Constant nodes and initializers), for axes/perm/exponent inputs. */
function constantValues(model: OnnxModel): Map<string, number[]> {
  const map = new Map<string, number[]>();
  for (const t of model.graph.initializer ?? []) {
    // Integer vectors (axes, shapes, indices) and scalars of any type (exponents, GELU's constants); float
    // tensors with more elements are parameters, never read as constants.
    const count = (t.dims ?? []).reduce((a: number, d) => a * Number(d), 1);
    if (((t.dims ?? []).length <= 1 && !isFloatType(t.dataType ?? 0)) || count === 1) map.set(t.name ?? '', Array.from(tensorToFloat32(t)));
  }
  for (const n of model.nodes) {
    if (n.opType !== 'Constant') continue;
    const a = (n.attribute ?? [])[0];
    if (!a) continue;
    if (a.name === 'value' && a.t) map.set(n.output![0], Array.from(tensorToFloat32(a.t)));
    else if (a.name === 'value_ints') map.set(n.output![0], (a.ints ?? []).map(Number));
    else if (a.name === 'value_int') map.set(n.output![0], [Number(a.i)]);
  }
  return map;
}

/** One node's backward through its entry in GRADIENTS: one gradient (or undefined) per forward input. */
function applyRule(ctx: RuleContext, n: onnx.INodeProto, gy: string, want: boolean[], gys?: (string | undefined)[]): (string | undefined)[] {
  const op = n.opType ?? '';
  const r = Object.prototype.hasOwnProperty.call(GRADIENTS, op) ? GRADIENTS[op] : undefined;
  if (!r) ctx.unsupported(n, 'no gradient rule');
  const ins = n.input ?? [];
  const y = n.output![0];
  return r.grad(ctx, { n, gy, gys, want, b: ctx.b, ins, y, ydims: ctx.dims(y), x0: ins[0], x1: ins[1], op });
}
