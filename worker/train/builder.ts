// A small emitter of ONNX nodes for the generated backward/optimizer parts of training graphs.
// Every helper returns the name of the tensor it produced, so gradient rules read like expressions.
import { onnx } from 'onnx-proto';

export const DT = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;

/** An attribute value with its ONNX type made explicit (a JS number alone cannot say INT or FLOAT). */
export type Attr =
  { kind: 'i'; v: number } | { kind: 'f'; v: number } | { kind: 'is'; v: number[] } | { kind: 's'; v: string } | { kind: 't'; v: onnx.ITensorProto };

export const A = {
  i: (v: number): Attr => ({ kind: 'i', v }),
  f: (v: number): Attr => ({ kind: 'f', v }),
  is: (v: number[]): Attr => ({ kind: 'is', v }),
  s: (v: string): Attr => ({ kind: 's', v }),
  t: (v: onnx.ITensorProto): Attr => ({ kind: 't', v }),
};

export function toAttribute(name: string, a: Attr): onnx.IAttributeProto {
  switch (a.kind) {
    case 'i':
      return { name, type: AT.INT, i: a.v };
    case 'f':
      return { name, type: AT.FLOAT, f: a.v };
    case 'is':
      return { name, type: AT.INTS, ints: a.v };
    case 's':
      return { name, type: AT.STRING, s: new TextEncoder().encode(a.v) };
    case 't':
      return { name, type: AT.TENSOR, t: a.v };
  }
}

/** A tensor proto holding `values` in the given float or integer element type. */
export function makeTensor(name: string, dataType: number, dims: number[], values: ArrayLike<number>): onnx.ITensorProto {
  let raw: Uint8Array;
  switch (dataType) {
    case DT.FLOAT:
      raw = new Uint8Array(Float32Array.from(values).buffer);
      break;
    case DT.DOUBLE:
      raw = new Uint8Array(Float64Array.from(values).buffer);
      break;
    case DT.INT64:
      raw = new Uint8Array(BigInt64Array.from(Array.from(values, (v) => BigInt(Math.trunc(v)))).buffer);
      break;
    case DT.INT32:
      raw = new Uint8Array(Int32Array.from(values).buffer);
      break;
    case DT.BOOL:
      raw = Uint8Array.from(values);
      break;
    default:
      throw new Error(`makeTensor: element type ${dataType} not supported`);
  }
  return onnx.TensorProto.create({ name, dataType, dims, rawData: raw });
}

export class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  private counter = 0;
  private readonly constCache = new Map<string, string>();

  constructor(
    readonly prefix: string,
    readonly opset: number,
  ) {}

  fresh(hint: string): string {
    return `${this.prefix}/${hint}_${this.counter++}`;
  }

  /** Emits one node; returns its outputs (named fresh unless `outputs` is given). */
  node(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, outputs: number | string[] = 1): string[] {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(opType)) : outputs;
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        name: this.fresh(`${opType}_node`),
        input: inputs,
        output: outs,
        attribute: Object.entries(attrs).map(([k, v]) => toAttribute(k, v)),
      }),
    );
    return outs;
  }

  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    return this.node(opType, inputs, attrs)[0];
  }

  /** An int64 constant (1-D unless `scalar`), shared between uses. */
  i64(values: number[], scalar = false): string {
    return this.constant(DT.INT64, scalar ? [] : [values.length], values);
  }

  /** A scalar constant of a float (or other) element type, shared between uses. */
  scalar(value: number, dataType: number): string {
    return this.constant(dataType, [], [value]);
  }

  constant(dataType: number, dims: number[], values: number[]): string {
    const key = `${dataType}|${dims.join(',')}|${values.join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.fresh('const');
    this.initializers.push(makeTensor(name, dataType, dims, values));
    this.constCache.set(key, name);
    return name;
  }

  // Opset-aware helpers: axes moved from attributes to inputs at opset 13 (ReduceSum, Squeeze, Unsqueeze,
  // Split) and at opset 18 (the other reductions).
  reduce(opType: string, x: string, axes: number[], keepdims: boolean): string {
    const axesAsInput = opType === 'ReduceSum' ? this.opset >= 13 : this.opset >= 18;
    if (axesAsInput) return this.op(opType, [x, this.i64(axes)], { keepdims: A.i(keepdims ? 1 : 0) });
    return this.op(opType, [x], { axes: A.is(axes), keepdims: A.i(keepdims ? 1 : 0) });
  }

  unsqueeze(x: string, axes: number[]): string {
    return this.opset >= 13 ? this.op('Unsqueeze', [x, this.i64(axes)]) : this.op('Unsqueeze', [x], { axes: A.is(axes) });
  }

  reshape(x: string, shape: string): string {
    return this.op('Reshape', [x, shape]);
  }

  shape(x: string): string {
    return this.op('Shape', [x]);
  }

  transpose(x: string, perm: number[]): string {
    return this.op('Transpose', [x], { perm: A.is(perm) });
  }

  /** Sum of several tensors of one shape (one node, no chain). */
  sum(terms: string[]): string {
    return terms.length === 1 ? terms[0] : this.op('Sum', terms);
  }
}

/** Element type of a tensor named by ORT's type string. */
export function dataTypeOf(ortType: string): number {
  switch (ortType) {
    case 'float32':
      return DT.FLOAT;
    case 'float64':
      return DT.DOUBLE;
    case 'float16':
      return DT.FLOAT16;
    case 'int64':
      return DT.INT64;
    case 'int32':
      return DT.INT32;
    case 'int8':
      return DT.INT8;
    case 'uint8':
      return DT.UINT8;
    case 'bool':
      return DT.BOOL;
    default:
      return DT.UNDEFINED;
  }
}

export function isFloatType(dataType: number): boolean {
  return dataType === DT.FLOAT || dataType === DT.DOUBLE || dataType === DT.FLOAT16 || dataType === DT.BFLOAT16;
}
