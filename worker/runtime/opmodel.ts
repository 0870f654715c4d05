// Tiny ONNX models for single products run through ONNX Runtime (cost matrices, alignment and refit products):
// one graph, opset 17, every input and output of one element type with symbolic dimensions.
import { onnx } from 'onnx-proto';

/** An integer attribute (transA, transB, …). */
export function intAttr(name: string, i: number): onnx.IAttributeProto {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i });
}

/** Encodes a model whose graph is `nodes`, with the named inputs / outputs and their symbolic dimensions. */
export function productModel(
  name: string,
  nodes: onnx.INodeProto[],
  inputs: Record<string, string[]>,
  outputs: Record<string, string[]>,
  elemType: number = onnx.TensorProto.DataType.FLOAT,
): Uint8Array {
  const vi = ([n, dims]: [string, string[]]) =>
    onnx.ValueInfoProto.create({ name: n, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimParam: d })) } } } });
  const graph = onnx.GraphProto.create({
    name,
    node: nodes.map((n) => onnx.NodeProto.create(n)),
    input: Object.entries(inputs).map(vi),
    output: Object.entries(outputs).map(vi),
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph, producerName: 'otfuse' })).finish();
}
