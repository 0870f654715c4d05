// A small index over an ONNX graph: who produces / consumes each tensor, which tensors are parameters
// (initializers) and which are compile-time constants (initializers or Constant nodes, possibly through
// Identity/Cast/Unsqueeze/Concat — exporters emit shapes either way depending on constant folding).
import { OtfuseError } from '../errors';
import { OnnxModel, NodeProto, tensorToFloat32, dimsOf } from '../onnx/model';
import { ShapeInfer } from './shapes';

/** Ops that only move data around without mixing values across the hidden (neuron) axis. */
export const SHAPE_OPS = new Set(['Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Cast', 'Dropout']);

/** Ops that only read a tensor's metadata: they never carry a transport map. */
const META_OPS = new Set(['Shape', 'Size']);

export class GraphIndex {
  readonly producer = new Map<string, NodeProto>();
  readonly consumers = new Map<string, NodeProto[]>();
  readonly inits: Set<string>;
  /** Every initializer's dims, from the model's descriptors (reading a lazy model's weights only for their dims
   * read 1.6 GB of BERT-base's twice over, issue 31). */
  private readonly initDims = new Map<string, number[]>();
  readonly outputs: Set<string>;
  readonly inputs: string[];
  /** Static partial shapes and shape arithmetic (reshape targets, slice bounds computed at run time). */
  readonly shapes: ShapeInfer;

  constructor(readonly model: OnnxModel) {
    this.inits = new Set(model.initializerNames());
    for (const t of model.graph.initializer ?? []) this.initDims.set(t.name ?? '', (t.dims ?? []).map(Number));
    for (const n of model.nodes) {
      for (const o of n.output ?? []) if (o) this.producer.set(o, n);
      for (const i of n.input ?? []) {
        if (!i) continue;
        const list = this.consumers.get(i) ?? [];
        list.push(n);
        this.consumers.set(i, list);
      }
    }
    this.outputs = new Set((model.graph.output ?? []).map((o) => o.name ?? ''));
    this.inputs = (model.graph.input ?? []).map((i) => i.name ?? '').filter((n) => !this.inits.has(n));
    this.shapes = new ShapeInfer(this);
  }

  get file(): string {
    return this.model.file;
  }

  /** Consumers that use the tensor's values (not only its shape). */
  dataConsumers(tensor: string): NodeProto[] {
    return (this.consumers.get(tensor) ?? []).filter((n) => !META_OPS.has(n.opType ?? ''));
  }

  /** The initializer behind a tensor, looking through Identity (exports without constant folding). */
  paramName(tensor: string): string | undefined {
    let t = tensor;
    for (let guard = 0; guard < 8; guard++) {
      if (this.inits.has(t)) return t;
      const p = this.producer.get(t);
      if (!p || p.opType !== 'Identity') return undefined;
      t = p.input![0];
    }
    return undefined;
  }

  paramDims(name: string): number[] {
    return this.initDims.get(name) ?? this.model.getInitializer(name).dims;
  }

  /** True when the tensor is a compile-time constant (no graph input upstream). */
  isConstant(tensor: string, depth = 0): boolean {
    if (this.inits.has(tensor)) return true;
    const p = this.producer.get(tensor);
    if (!p) return false;
    if (p.opType === 'Constant' || p.opType === 'ConstantOfShape') return true;
    if (depth > 6) return false;
    return (p.input ?? []).filter(Boolean).every((i) => this.isConstant(i, depth + 1));
  }

  /** Values of a small constant tensor (numbers), or undefined when it is not constant here. */
  constValues(tensor: string, depth = 0): number[] | undefined {
    if (this.inits.has(tensor)) return Array.from(this.model.getInitializer(tensor).data);
    const p = this.producer.get(tensor);
    if (!p || depth > 8) return undefined;
    switch (p.opType) {
      case 'Constant': {
        const value = (p.attribute ?? []).find((a) => a.name === 'value');
        if (value?.t) return Array.from(tensorToFloat32(value.t, this.file));
        const fl = (p.attribute ?? []).find((a) => a.name === 'value_float' || a.name === 'value_int');
        if (fl) return [fl.name === 'value_float' ? Number(fl.f) : Number(fl.i)];
        const ints = (p.attribute ?? []).find((a) => a.name === 'value_ints' || a.name === 'value_floats');
        if (ints) return ints.name === 'value_ints' ? (ints.ints ?? []).map(Number) : (ints.floats ?? []).map(Number);
        return undefined;
      }
      case 'Identity':
      case 'Cast':
      case 'Unsqueeze':
      case 'Squeeze':
      case 'Reshape':
        return this.constValues(p.input![0], depth + 1);
      case 'Concat': {
        const parts = (p.input ?? []).map((i) => this.constValues(i, depth + 1));
        if (parts.some((x) => x === undefined)) return undefined;
        return parts.flat() as number[];
      }
      default:
        return undefined;
    }
  }

  /**
   * A Reshape target shape where some entries may be dynamic (from Shape→Gather): null marks those.
   * Exporters with constant folding off build it as Concat(Unsqueeze(Gather(Shape)), Constant, ...).
   */
  shapeVector(tensor: string): (number | null)[] | undefined {
    const whole = this.constValues(tensor);
    if (whole) return whole;
    const p = this.producer.get(tensor);
    if (!p || p.opType !== 'Concat') return undefined;
    const out: (number | null)[] = [];
    for (const i of p.input ?? []) {
      const v = this.constValues(i);
      if (v) out.push(...v);
      else out.push(null);
    }
    return out;
  }

  node(name: string | undefined | null): string {
    return name ?? '?';
  }

  attrInts(node: NodeProto, name: string): number[] | undefined {
    const a = (node.attribute ?? []).find((x) => x.name === name);
    return a ? (a.ints ?? []).map(Number) : undefined;
  }

  attrInt(node: NodeProto, name: string): number | undefined {
    const a = (node.attribute ?? []).find((x) => x.name === name);
    return a ? Number(a.i) : undefined;
  }

  attrFloat(node: NodeProto, name: string): number | undefined {
    const a = (node.attribute ?? []).find((x) => x.name === name);
    return a ? Number(a.f) : undefined;
  }

  unsupported(node: NodeProto | undefined, why: string): OtfuseError {
    const where = node ? `${node.opType} node '${node.name ?? '?'}'` : 'graph';
    return new OtfuseError('UNSUPPORTED', `cannot place ${where} in the alignment structure: ${why}`, { file: this.file, node: node?.name ?? undefined });
  }
}

export function numel(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export { dimsOf };
