// Static, partial shape inference and evaluation of shape arithmetic over an ONNX graph.
// Exporters compute reshape targets and slice bounds at run time (Shape → Gather → Add/Div/Mul → Slice, or
// Concat of Unsqueezed dims); PyTorch versions differ in the exact op sequence. Rather than match one sequence,
// these tensors are evaluated here from what is known statically: initializer and Constant values, the
// declared input shapes, and the shapes that follow from them. Unknown dimensions (the batch) are null and
// propagate; anything this module cannot evaluate is `undefined`, never a guess.
import type { NodeProto, OnnxModel } from '../onnx/model';
import { tensorToFloat32 } from '../onnx/model';

export type Dim = number | null;

const UNARY = new Set([
  'Relu',
  'Gelu',
  'FastGelu',
  'Erf',
  'Sqrt',
  'Tanh',
  'Sigmoid',
  'Softmax',
  'LogSoftmax',
  'Cast',
  'Identity',
  'Dropout',
  'LayerNormalization',
  'SimplifiedLayerNormalization',
  'Neg',
  'Exp',
  'Log',
  'Abs',
  'Softplus',
  'HardSigmoid',
  'Not',
]);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Equal', 'Greater', 'Less', 'And', 'Or', 'Max', 'Min']);
const MAX_VALUE = 64;

function bcast(a: Dim[], b: Dim[]): Dim[] {
  const r = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const ia = a.length - r + i,
      ib = b.length - r + i;
    const x = ia >= 0 ? a[ia] : 1,
      y = ib >= 0 ? b[ib] : 1; // missing leading dims are 1; null (unknown) stays null
    if (x === 1) out.push(y);
    else if (y === 1) out.push(x);
    else if (x === null) out.push(y);
    else out.push(x);
  }
  return out;
}

function prodKnown(d: Dim[]): { p: number; unknown: number } {
  let p = 1,
    unknown = 0;
  for (const x of d) {
    if (x === null) unknown++;
    else p *= x;
  }
  return { p, unknown };
}

const LAYOUT_OPS = new Set([
  'Reshape',
  'Flatten',
  'Unsqueeze',
  'Squeeze',
  'Concat',
  'Gather',
  'Slice',
  'Split',
  'ReduceMean',
  'ReduceSum',
  'ReduceMax',
  'Expand',
]);

/** What shape inference reads of a graph (ir.ts's GraphIndex provides it). */
export interface ShapeGraph {
  readonly model: OnnxModel;
  readonly file: string;
  readonly inits: Set<string>;
  readonly producer: Map<string, NodeProto>;
  paramDims(name: string): number[];
  attrInt(node: NodeProto, name: string): number | undefined;
  attrInts(node: NodeProto, name: string): number[] | undefined;
}

export class ShapeInfer {
  private readonly shapes = new Map<string, Dim[] | undefined>();
  private readonly values = new Map<string, Dim[] | undefined>();
  private readonly busy = new Set<string>();

  constructor(private readonly g: ShapeGraph) {}

  /** The tensor's shape, with null for dimensions not known statically; undefined when even the rank is not. */
  shape(t: string): Dim[] | undefined {
    if (this.shapes.has(t)) return this.shapes.get(t);
    if (this.busy.has(t)) return undefined;
    this.busy.add(t);
    let s: Dim[] | undefined;
    try {
      s = this.inferShape(t);
    } catch {
      s = undefined;
    }
    this.busy.delete(t);
    this.shapes.set(t, s);
    return s;
  }

  /** The values of a small integer tensor (shape arithmetic), null where not known statically. */
  value(t: string): Dim[] | undefined {
    if (this.values.has(t)) return this.values.get(t);
    if (this.busy.has('v:' + t)) return undefined;
    this.busy.add('v:' + t);
    let v: Dim[] | undefined;
    try {
      v = this.inferValue(t);
    } catch {
      v = undefined;
    }
    this.busy.delete('v:' + t);
    if (v && v.length > MAX_VALUE) v = undefined;
    this.values.set(t, v);
    return v;
  }

  /** One statically known scalar, or undefined. */
  scalar(t: string): number | undefined {
    const v = this.value(t);
    return v && v.length === 1 && v[0] !== null ? v[0] : undefined;
  }

  private axesOf(n: NodeProto, slot: number): number[] | undefined {
    const attr = this.g.attrInts(n, 'axes');
    if (attr) return attr;
    const inp = n.input?.[slot];
    if (!inp) return undefined;
    const v = this.value(inp);
    return v && v.every((x) => x !== null) ? (v as number[]) : undefined;
  }

  private inferShape(t: string): Dim[] | undefined {
    const g = this.g;
    if (g.inits.has(t)) return g.paramDims(t);
    const input = (g.model.graph.input ?? []).find((i) => i.name === t);
    if (input) {
      const dims = input.type?.tensorType?.shape?.dim;
      if (!dims) return undefined;
      return dims.map((d) => (d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue) > 0 ? Number(d.dimValue) : null));
    }
    const n = g.producer.get(t);
    if (!n) return undefined;
    const op = n.opType ?? '';
    const ins = n.input ?? [];
    const sh = (i: number) => (ins[i] ? this.shape(ins[i]) : undefined);
    if (op === 'Constant') {
      const a = (n.attribute ?? []).find((x) => x.name === 'value');
      if (a?.t) return (a.t.dims ?? []).map(Number);
      const ints = (n.attribute ?? []).find((x) => x.name === 'value_ints' || x.name === 'value_floats');
      if (ints) return [(ints.ints ?? ints.floats ?? []).length];
      return [];
    }
    if (UNARY.has(op)) return sh(0);
    if (BINARY.has(op)) {
      const a = sh(0),
        b = sh(1);
      return a && b ? bcast(a, b) : undefined;
    }
    return LAYOUT_OPS.has(op) ? this.layoutShape(n, t) : this.arithmeticShape(n, t);
  }

  /** Element-wise selection, shape arithmetic, products and convolutions. */
  private arithmeticShape(n: NodeProto, t: string): Dim[] | undefined {
    const g = this.g;
    const ins = n.input ?? [];
    const sh = (i: number) => (ins[i] ? this.shape(ins[i]) : undefined);
    switch (n.opType ?? '') {
      case 'Where': {
        const a = sh(0),
          b = sh(1),
          c = sh(2);
        return a && b && c ? bcast(bcast(a, b), c) : undefined;
      }
      case 'Shape': {
        const x = sh(0);
        if (!x) return undefined;
        const v = this.value(t);
        return [v ? v.length : x.length];
      }
      case 'ConstantOfShape': {
        const v = this.value(ins[0]);
        return v ?? undefined;
      }
      case 'Range': {
        const [s0, l, d] = [this.scalar(ins[0]), this.scalar(ins[1]), this.scalar(ins[2])];
        return [s0 !== undefined && l !== undefined && d ? Math.max(0, Math.ceil((l - s0) / d)) : null];
      }
      case 'MatMul': {
        const a = sh(0),
          b = sh(1);
        if (!a || !b || a.length < 2 || b.length < 2) return undefined;
        return [...bcast(a.slice(0, -2), b.slice(0, -2)), a[a.length - 2], b[b.length - 1]];
      }
      case 'Gemm': {
        const a = sh(0),
          b = sh(1);
        if (!a || !b) return undefined;
        const ta = g.attrInt(n, 'transA') === 1,
          tb = g.attrInt(n, 'transB') === 1;
        return [ta ? a[1] : a[0], tb ? b[0] : b[1]];
      }
      case 'Conv': {
        const x = sh(0),
          w = sh(1);
        if (!x || !w) return undefined;
        const k = g.attrInts(n, 'kernel_shape') ?? (w.slice(2) as number[]);
        const s = g.attrInts(n, 'strides') ?? k.map(() => 1);
        const p = g.attrInts(n, 'pads') ?? k.map(() => 0).concat(k.map(() => 0));
        const sp = x.slice(2).map((d, i) => (d === null ? null : Math.floor((d + p[i] + p[i + k.length] - k[i]) / s[i]) + 1));
        return [x[0], w[0], ...sp];
      }
      case 'Transpose': {
        const x = sh(0);
        if (!x) return undefined;
        const perm = g.attrInts(n, 'perm') ?? x.map((_, i) => x.length - 1 - i);
        return perm.map((p) => x[p]);
      }
      default:
        return undefined;
    }
  }

  /** Ops that move, cut, join or reduce axes. */
  private layoutShape(n: NodeProto, t: string): Dim[] | undefined {
    const g = this.g;
    const ins = n.input ?? [];
    const sh = (i: number) => (ins[i] ? this.shape(ins[i]) : undefined);
    switch (n.opType ?? '') {
      case 'Reshape': {
        const x = sh(0),
          target = this.value(ins[1]);
        if (!target) return undefined;
        const allowzero = g.attrInt(n, 'allowzero') === 1;
        const out: Dim[] = target.map((d, i) => (d === 0 && !allowzero ? (x ? (x[i] ?? null) : null) : d));
        const neg = out.indexOf(-1);
        if (neg >= 0) {
          out[neg] = null;
          if (x) {
            const a = prodKnown(x),
              b = prodKnown(out.filter((_, i) => i !== neg));
            // One unknown (the batch) on each side is taken to be the same dimension.
            if (a.unknown === b.unknown && a.unknown <= 1 && b.p > 0 && a.p % b.p === 0) out[neg] = a.p / b.p;
          }
        }
        return out;
      }
      case 'Flatten': {
        const x = sh(0);
        if (!x) return undefined;
        let axis = g.attrInt(n, 'axis') ?? 1;
        if (axis < 0) axis += x.length;
        const p = (d: Dim[]) => (d.some((y) => y === null) ? null : d.reduce((a: number, b) => a * (b as number), 1));
        return [p(x.slice(0, axis)), p(x.slice(axis))];
      }
      case 'Unsqueeze': {
        const x = sh(0),
          axes = this.axesOf(n, 1);
        if (!x || !axes) return undefined;
        const r = x.length + axes.length;
        const norm = axes.map((a) => (a < 0 ? a + r : a));
        const out: Dim[] = [];
        let j = 0;
        for (let i = 0; i < r; i++) out.push(norm.includes(i) ? 1 : x[j++]);
        return out;
      }
      case 'Squeeze': {
        const x = sh(0);
        if (!x) return undefined;
        const axes = this.axesOf(n, 1);
        if (!axes) return x.filter((d) => d !== 1);
        const norm = axes.map((a) => (a < 0 ? a + x.length : a));
        return x.filter((_, i) => !norm.includes(i));
      }
      case 'Concat': {
        const parts = ins.map((i) => this.shape(i));
        if (parts.some((p) => !p)) return undefined;
        let axis = g.attrInt(n, 'axis') ?? 0;
        const r = parts[0]!.length;
        if (axis < 0) axis += r;
        let out = parts[0]!.slice();
        for (const p of parts.slice(1)) out = out.map((d, i) => (i === axis ? (d === null || p![i] === null ? null : d + (p![i] as number)) : (d ?? p![i])));
        return out;
      }
      case 'Gather': {
        const x = sh(0),
          idx = sh(1);
        if (!x || !idx) return undefined;
        let axis = g.attrInt(n, 'axis') ?? 0;
        if (axis < 0) axis += x.length;
        return [...x.slice(0, axis), ...idx, ...x.slice(axis + 1)];
      }
      case 'Slice': {
        const x = sh(0);
        if (!x) return undefined;
        const starts = this.value(ins[1]),
          ends = this.value(ins[2]);
        const axes = ins[3] ? this.value(ins[3]) : starts?.map((_, i) => i);
        const steps = ins[4] ? this.value(ins[4]) : starts?.map(() => 1);
        if (!starts || !ends || !axes || !steps) return undefined;
        const out = x.slice();
        axes.forEach((a, i) => {
          if (a === null) {
            out.fill(null);
            return;
          }
          const ax = a < 0 ? a + x.length : a;
          const range = sliceRange(x[ax], starts[i], ends[i], steps[i]);
          out[ax] = range ? range.size : null;
        });
        return out;
      }
      case 'Split': {
        const x = sh(0);
        if (!x) return undefined;
        let axis = g.attrInt(n, 'axis') ?? 0;
        if (axis < 0) axis += x.length;
        const k = (n.output ?? []).indexOf(t);
        const sizes = this.splitSizes(n, x[axis]);
        const out = x.slice();
        out[axis] = sizes ? sizes[k] : null;
        return out;
      }
      case 'ReduceMean':
      case 'ReduceSum':
      case 'ReduceMax': {
        const x = sh(0);
        if (!x) return undefined;
        const axes = this.axesOf(n, 1);
        const keep = (g.attrInt(n, 'keepdims') ?? 1) === 1;
        if (!axes) return keep ? x.map(() => 1) : [];
        const norm = axes.map((a) => (a < 0 ? a + x.length : a));
        return keep ? x.map((d, i) => (norm.includes(i) ? 1 : d)) : x.filter((_, i) => !norm.includes(i));
      }
      case 'Expand': {
        const x = sh(0),
          target = this.value(ins[1]);
        if (!x || !target) return undefined;
        return bcast(x, target);
      }
      default:
        return undefined;
    }
  }

  /** Output sizes of a Split node along its axis. */
  splitSizes(n: NodeProto, dim: Dim): number[] | undefined {
    const outs = (n.output ?? []).length;
    const attr = this.g.attrInts(n, 'split');
    if (attr) return attr;
    const inp = n.input?.[1];
    if (inp) {
      const v = this.value(inp);
      return v && v.every((x) => x !== null) ? (v as number[]) : undefined;
    }
    return dim === null || dim % outs !== 0 ? undefined : Array.from({ length: outs }, () => dim / outs);
  }

  private inferValue(t: string): Dim[] | undefined {
    const g = this.g;
    if (g.inits.has(t)) {
      if (g.paramDims(t).reduce((a, b) => a * b, 1) > MAX_VALUE) return undefined; // no read of a large weight
      const init = g.model.getInitializer(t);
      return init.data.length <= MAX_VALUE ? Array.from(init.data) : undefined;
    }
    const n = g.producer.get(t);
    if (!n) return undefined;
    const op = n.opType ?? '';
    const ins = n.input ?? [];
    const v = (i: number) => (ins[i] ? this.value(ins[i]) : undefined);
    switch (op) {
      case 'Constant': {
        const a = (n.attribute ?? []).find((x) => x.name === 'value');
        if (a?.t) return Array.from(tensorToFloat32(a.t, g.file));
        const one = (n.attribute ?? []).find((x) => x.name === 'value_float' || x.name === 'value_int');
        if (one) return [one.name === 'value_float' ? Number(one.f) : Number(one.i)];
        const ints = (n.attribute ?? []).find((x) => x.name === 'value_ints' || x.name === 'value_floats');
        if (ints) return ints.name === 'value_ints' ? (ints.ints ?? []).map(Number) : (ints.floats ?? []).map(Number);
        return undefined;
      }
      case 'Shape': {
        const x = this.shape(ins[0]);
        if (!x) return undefined;
        let start = g.attrInt(n, 'start') ?? 0,
          end = g.attrInt(n, 'end') ?? x.length;
        if (start < 0) start += x.length;
        if (end < 0) end += x.length;
        return x.slice(start, end);
      }
      case 'Identity':
      case 'Cast':
      case 'Unsqueeze':
      case 'Squeeze':
      case 'Reshape':
      case 'Flatten':
        return v(0);
      case 'Concat': {
        const parts = ins.map((i) => this.value(i));
        return parts.some((p) => !p) ? undefined : (parts as Dim[][]).flat();
      }
      case 'Gather': {
        const data = v(0),
          idx = v(1);
        if (!data || !idx) return undefined;
        return idx.map((i) => (i === null ? null : (data[i < 0 ? i + data.length : i] ?? null)));
      }
      case 'Slice': {
        const data = v(0),
          s = v(1),
          e = v(2);
        if (!data || !s || !e || s.length !== 1) return undefined;
        const steps = ins[4] ? v(4) : [1];
        const r = sliceRange(data.length, s[0], e[0], steps?.[0] ?? null);
        if (!r || r.step !== 1) return undefined;
        return data.slice(r.start, r.start + r.size);
      }
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
      case 'Equal': {
        const a = v(0),
          b = v(1);
        if (!a || !b) return undefined;
        const len = Math.max(a.length, b.length);
        if (a.length !== len && a.length !== 1) return undefined;
        if (b.length !== len && b.length !== 1) return undefined;
        const out: Dim[] = [];
        for (let i = 0; i < len; i++) {
          const x = a[a.length === 1 ? 0 : i],
            y = b[b.length === 1 ? 0 : i];
          if (x === null || y === null) {
            out.push(null);
            continue;
          }
          switch (op) {
            case 'Add':
              out.push(x + y);
              break;
            case 'Sub':
              out.push(x - y);
              break;
            case 'Mul':
              out.push(x * y);
              break;
            case 'Div':
              out.push(Number.isInteger(x) && Number.isInteger(y) ? Math.trunc(x / y) : x / y);
              break;
            default:
              out.push(x === y ? 1 : 0);
          }
        }
        return out;
      }
      case 'Where': {
        const c = v(0),
          a = v(1),
          b = v(2);
        if (!c || !a || !b) return undefined;
        const len = Math.max(c.length, a.length, b.length);
        const at = (arr: Dim[], i: number) => arr[arr.length === 1 ? 0 : i];
        return Array.from({ length: len }, (_, i) => {
          const cond = at(c, i),
            x = at(a, i),
            y = at(b, i);
          if (cond === null) return x === y ? x : null;
          return cond ? x : y;
        });
      }
      case 'ConstantOfShape': {
        const shape = v(0);
        if (!shape || shape.some((d) => d === null)) return undefined;
        const count = (shape as number[]).reduce((a, b) => a * b, 1);
        if (count > MAX_VALUE) return undefined;
        const a = (n.attribute ?? []).find((x) => x.name === 'value');
        const fill = a?.t ? tensorToFloat32(a.t, g.file)[0] : 0;
        return Array.from({ length: count }, () => fill);
      }
      default:
        return undefined;
    }
  }
}

/** Normalised [start, start+size) of a Slice along a dimension of length `dim` (step 1 or −1 only sized). */
export function sliceRange(dim: Dim, start: Dim, end: Dim, step: Dim): { start: number; size: number; step: number } | undefined {
  if (start === null || end === null || step === null || step === 0) return undefined;
  if (step !== 1) return undefined;
  const big = 2 ** 53;
  if (dim === null) {
    // Without the length, only non-negative bounds that stay inside any length are known.
    if (start < 0 || end < 0 || end >= big / 2) return undefined;
    return { start, size: Math.max(0, end - start), step };
  }
  const clamp = (x: number) => Math.min(Math.max(x < 0 ? x + dim : x, 0), dim);
  const s = clamp(start),
    e = clamp(end);
  return { start: s, size: Math.max(0, e - s), step };
}
