// Graph surgery on the fixture export, to reproduce what other exporters / opsets / folding settings emit
// without PyTorch: decomposed LayerNorm, tanh-form GELU, the Gelu op, Constant nodes turned into initializers,
// a different opset, and broken graphs for the error paths.
import { onnx } from 'onnx-proto';
import { OnnxModel } from '../../worker/onnx/model';

type Node = onnx.INodeProto;

function scalarInit(model: OnnxModel, name: string, value: number): string {
  model.graph.initializer!.push(
    onnx.TensorProto.create({ name, dims: [], dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(new Float32Array([value]).buffer) }),
  );
  return name;
}

function int64Init(model: OnnxModel, name: string, values: number[]): string {
  model.graph.initializer!.push(
    onnx.TensorProto.create({
      name,
      dims: [values.length],
      dataType: onnx.TensorProto.DataType.INT64,
      rawData: new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer),
    }),
  );
  return name;
}

function node(op: string, name: string, inputs: string[], outputs: string[], attrs: onnx.IAttributeProto[] = []): Node {
  return onnx.NodeProto.create({ opType: op, name, input: inputs, output: outputs, attribute: attrs });
}

/** Rebuilds the model (initializer index) after editing the proto. */
export function rebuild(model: OnnxModel): OnnxModel {
  return new OnnxModel(onnx.ModelProto.decode(model.toBytes()), model.file);
}

function replaceNodes(model: OnnxModel, target: Node, replacement: Node[]): void {
  const nodes = model.graph.node!;
  const i = nodes.indexOf(target as onnx.NodeProto);
  nodes.splice(i, 1, ...(replacement as onnx.NodeProto[]));
}

/** LayerNormalization → ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add (opset ≤ 17 ReduceMean with axes attribute). */
export function decomposeLayerNorms(src: OnnxModel): OnnxModel {
  const model = src.clone();
  const lns = model.nodes.filter((n) => n.opType === 'LayerNormalization');
  const two = scalarInit(model, 'surgery_two', 2);
  lns.forEach((ln, k) => {
    const eps = scalarInit(model, `surgery_eps_${k}`, 1e-12);
    const [x, scale, bias] = ln.input!;
    const p = `/surgery/ln${k}`;
    const axes = [onnx.AttributeProto.create({ name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [-1] })];
    replaceNodes(model, ln, [
      node('ReduceMean', `${p}/ReduceMean`, [x], [`${p}/mean`], axes),
      node('Sub', `${p}/Sub`, [x, `${p}/mean`], [`${p}/d`]),
      node('Pow', `${p}/Pow`, [`${p}/d`, two], [`${p}/d2`]),
      node('ReduceMean', `${p}/ReduceMean_1`, [`${p}/d2`], [`${p}/var`], axes),
      node('Add', `${p}/Add`, [`${p}/var`, eps], [`${p}/vareps`]),
      node('Sqrt', `${p}/Sqrt`, [`${p}/vareps`], [`${p}/std`]),
      node('Div', `${p}/Div`, [`${p}/d`, `${p}/std`], [`${p}/norm`]),
      node('Mul', `${p}/Mul`, [`${p}/norm`, scale], [`${p}/scaled`]),
      node('Add', `${p}/Add_1`, [`${p}/scaled`, bias], [ln.output![0]]),
    ]);
  });
  return rebuild(model);
}

/** Erf-form GELU (Div, Erf, Add, Mul, Mul) → tanh form 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export function tanhGelu(src: OnnxModel): OnnxModel {
  const model = src.clone();
  const erfs = model.nodes.filter((n) => n.opType === 'Erf');
  const c = scalarInit(model, 'surgery_c', 0.044715),
    s = scalarInit(model, 'surgery_s', Math.sqrt(2 / Math.PI));
  const one = scalarInit(model, 'surgery_one', 1),
    half = scalarInit(model, 'surgery_half', 0.5),
    three = scalarInit(model, 'surgery_three', 3);
  erfs.forEach((erf, k) => {
    const div = model.nodes.find((n) => n.output![0] === erf.input![0])!;
    const x = div.input![0];
    // The chain's last Mul (·0.5) writes the tensor fc2 reads.
    const chain = chainFrom(model, div);
    const last = chain[chain.length - 1];
    const p = `/surgery/gelu${k}`;
    const repl = [
      node('Pow', `${p}/Pow`, [x, three], [`${p}/x3`]),
      node('Mul', `${p}/Mul`, [`${p}/x3`, c], [`${p}/cx3`]),
      node('Add', `${p}/Add`, [x, `${p}/cx3`], [`${p}/inner`]),
      node('Mul', `${p}/Mul_1`, [`${p}/inner`, s], [`${p}/arg`]),
      node('Tanh', `${p}/Tanh`, [`${p}/arg`], [`${p}/t`]),
      node('Add', `${p}/Add_1`, [`${p}/t`, one], [`${p}/t1`]),
      node('Mul', `${p}/Mul_2`, [x, `${p}/t1`], [`${p}/xt`]),
      node('Mul', `${p}/Mul_3`, [`${p}/xt`, half], [last.output![0]]),
    ];
    const nodes = model.graph.node!;
    const at = nodes.indexOf(div as onnx.NodeProto);
    for (const n of chain) nodes.splice(nodes.indexOf(n as onnx.NodeProto), 1);
    nodes.splice(at, 0, ...(repl as onnx.NodeProto[]));
  });
  return rebuild(model);
}

/** The Erf GELU chain (Div → Erf → Add → Mul → Mul) starting at its Div. */
function chainFrom(model: OnnxModel, div: Node): Node[] {
  const chain: Node[] = [div];
  let t = div.output![0];
  for (let i = 0; i < 4; i++) {
    const next = model.nodes.find((n) => n.input!.includes(t))!;
    chain.push(next);
    t = next.output![0];
  }
  return chain;
}

/** The Erf GELU chain → one com.microsoft Gelu node. */
export function geluOp(src: OnnxModel): OnnxModel {
  const model = src.clone();
  const erfs = model.nodes.filter((n) => n.opType === 'Erf');
  erfs.forEach((erf, k) => {
    const div = model.nodes.find((n) => n.output![0] === erf.input![0])!;
    const chain = chainFrom(model, div);
    const nodes = model.graph.node!;
    const at = nodes.indexOf(div as onnx.NodeProto);
    for (const n of chain) nodes.splice(nodes.indexOf(n as onnx.NodeProto), 1);
    const g = onnx.NodeProto.create({
      opType: 'Gelu',
      domain: 'com.microsoft',
      name: `/surgery/Gelu_${k}`,
      input: [div.input![0]],
      output: [chain[chain.length - 1].output![0]],
    });
    nodes.splice(at, 0, g);
  });
  model.proto.opsetImport!.push(onnx.OperatorSetIdProto.create({ domain: 'com.microsoft', version: 1 }));
  return rebuild(model);
}

/** Every Constant node becomes an initializer (what an exporter without Constant nodes writes); opset set too. */
export function constantsToInitializers(src: OnnxModel, opset = 17): OnnxModel {
  const model = src.clone();
  for (const n of [...model.nodes]) {
    if (n.opType !== 'Constant') continue;
    const v = n.attribute!.find((a) => a.name === 'value')!.t!;
    model.graph.initializer!.push(onnx.TensorProto.create({ ...v, name: n.output![0] }));
    model.graph.node!.splice(model.graph.node!.indexOf(n as onnx.NodeProto), 1);
  }
  for (const o of model.proto.opsetImport!) if (!o.domain) o.version = opset;
  return rebuild(model);
}

/** Drops the last transformer block (a shallower model with the same widths). */
export function dropLastBlock(src: OnnxModel, layers = 3): OnnxModel {
  const model = src.clone();
  const last = `/vit/encoder/layer.${layers - 1}/`;
  const prevOut = `/vit/encoder/layer.${layers - 2}/output/Add_output_0`;
  const lastOut = `${last}output/Add_output_0`;
  model.graph.node = model.graph.node!.filter((n) => !(n.name ?? '').startsWith(last));
  for (const n of model.graph.node) n.input = n.input!.map((i) => (i === lastOut ? prevOut : i));
  const used = new Set(model.graph.node.flatMap((n) => n.input ?? []));
  model.graph.initializer = model.graph.initializer!.filter((t) => used.has(t.name ?? ''));
  return rebuild(model);
}

/** Rewrites the head-split shapes [b, s, 4, 12] → [b, s, 6, 8] (a model with another head count). */
export function sixHeads(src: OnnxModel): OnnxModel {
  const model = src.clone();
  for (const r of model.nodes.filter(
    (n) => n.opType === 'Reshape' && (n.name ?? '').includes('/attention/attention/Reshape') && !(n.name ?? '').endsWith('Reshape_3'),
  )) {
    const concat = model.nodes.find((n) => n.output![0] === r.input![1])!;
    const k = model.nodes.indexOf(r);
    const heads = int64Init(model, `surgery_heads_${k}`, [6]);
    const dim = int64Init(model, `surgery_dim_${k}`, [8]);
    const inputs = [...concat.input!];
    concat.input = [inputs[0], inputs[1], heads, dim];
  }
  return rebuild(model);
}

/** Replaces one op type in one node (an op the analysis cannot place). */
export function replaceOp(src: OnnxModel, nodeName: string, op: string): OnnxModel {
  const model = src.clone();
  const n = model.nodes.find((x) => x.name === nodeName);
  if (!n) throw new Error(`no node ${nodeName}`);
  n.opType = op;
  return rebuild(model);
}

/** A small MLP classifier on the same input: valid ONNX, not a transformer. */
export function mlpModel(file: string): OnnxModel {
  const rand = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.05);
  const f = (name: string, dims: number[]) =>
    onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(rand(dims.reduce((a, b) => a * b, 1)).buffer) });
  const vi = (name: string, dims: (number | string)[]) =>
    onnx.ValueInfoProto.create({
      name,
      type: {
        tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } },
      },
    });
  const graph = onnx.GraphProto.create({
    name: 'mlp',
    node: [
      node('Flatten', 'flatten', ['pixel_values'], ['flat']),
      node('MatMul', 'fc1', ['flat', 'w1'], ['h']),
      node('Relu', 'relu', ['h'], ['a']),
      node('MatMul', 'fc2', ['a', 'w2'], ['logits']),
    ],
    initializer: [f('w1', [784, 32]), f('w2', [32, 10])],
    input: [vi('pixel_values', ['batch', 1, 28, 28])],
    output: [vi('logits', ['batch', 10])],
  });
  const proto = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph, producerName: 'otfuse-test' });
  return new OnnxModel(proto, file);
}

/**
 * Unfolded nn.Linear weights (what torch.onnx.export writes with do_constant_folding=False): every MatMul weight
 * W[in, out] becomes Transpose(W'[out, in]) with W' holding the transposed values — same function.
 */
export function unfoldedLinears(src: OnnxModel): OnnxModel {
  const model = src.clone();
  const inits = new Set(model.initializerNames());
  for (const n of [...model.nodes]) {
    if (n.opType !== 'MatMul' || !inits.has(n.input![1])) continue;
    const w = model.getInitializer(n.input![1]);
    const [rows, cols] = w.dims;
    const t = new Float32Array(w.data.length);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = w.data[i * cols + j];
    const name = `${n.input![1]}_outin`;
    model.graph.initializer!.push(
      onnx.TensorProto.create({ name, dims: [cols, rows], dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(t.buffer) }),
    );
    const tr = node(
      'Transpose',
      `${n.name}/WeightTranspose`,
      [name],
      [`${name}_T`],
      [onnx.AttributeProto.create({ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 0] })],
    );
    const nodes = model.graph.node!;
    nodes.splice(nodes.indexOf(n as onnx.NodeProto), 0, tr as onnx.NodeProto);
    const old = n.input![1];
    n.input![1] = `${name}_T`;
    model.graph.initializer = model.graph.initializer!.filter((x) => x.name !== old);
  }
  return rebuild(model);
}
