// Per-op gradient checks: one tiny graph per op (and per tricky variant: broadcasting, transposes, axes),
// analytic gradients of Σ out·w against central finite differences. Any single wrong rule fails its test.
import test from 'node:test';
import assert from 'node:assert/strict';
import { A, DT } from '../../worker/train/builder';
import { buildGradientGraph } from '../../worker/train/graphs';
import { OtfuseError } from '../../worker/errors';
import { TinyGraph, buildTiny, checkTinyGradients } from './helpers';

const i64 = (name: string, values: number[], dims = [values.length]) => ({ name, dataType: DT.INT64, dims, values });
const fconst = (name: string, values: number[], dims: number[] = []) => ({ name, dataType: DT.FLOAT, dims, values });

const cases: Record<string, TinyGraph> = {
  'Add (broadcast [4] and [3,1])': {
    inputs: [
      { name: 'x', dims: [2, 3, 4] },
      { name: 'b', dims: [4] },
      { name: 'c', dims: [3, 1] },
    ],
    nodes: [
      { op: 'Add', inputs: ['x', 'b'], outputs: ['t'] },
      { op: 'Add', inputs: ['c', 't'], outputs: ['y'] },
    ],
    output: 'y',
  },
  'Sub (broadcast)': {
    inputs: [
      { name: 'x', dims: [2, 3] },
      { name: 'z', dims: [1, 3] },
    ],
    nodes: [{ op: 'Sub', inputs: ['x', 'z'], outputs: ['y'] }],
    output: 'y',
  },
  'Mul (broadcast both ways)': {
    inputs: [
      { name: 'x', dims: [2, 1, 4] },
      { name: 'z', dims: [3, 1] },
    ],
    nodes: [{ op: 'Mul', inputs: ['x', 'z'], outputs: ['y'] }],
    output: 'y',
  },
  'Div (broadcast)': {
    inputs: [
      { name: 'x', dims: [2, 3] },
      { name: 'z', dims: [3], positive: true },
    ],
    nodes: [{ op: 'Div', inputs: ['x', 'z'], outputs: ['y'] }],
    output: 'y',
  },
  'Pow (constant exponent 3)': {
    inputs: [{ name: 'x', dims: [2, 3], positive: true }],
    consts: [fconst('e', [3])],
    nodes: [{ op: 'Pow', inputs: ['x', 'e'], outputs: ['y'] }],
    output: 'y',
  },
  Sqrt: {
    inputs: [{ name: 'x', dims: [2, 3], positive: true }],
    nodes: [{ op: 'Sqrt', inputs: ['x'], outputs: ['y'] }],
    output: 'y',
  },
  'ReduceMean (opset 17 axes attribute, keepdims 0)': {
    inputs: [{ name: 'x', dims: [2, 3, 4] }],
    nodes: [{ op: 'ReduceMean', inputs: ['x'], outputs: ['y'], attrs: { axes: A.is([1, -1]), keepdims: A.i(0) } }],
    output: 'y',
  },
  'ReduceMean (opset 18 axes input)': {
    opset: 18,
    inputs: [{ name: 'x', dims: [2, 3, 4] }],
    consts: [i64('axes', [-1])],
    nodes: [{ op: 'ReduceMean', inputs: ['x', 'axes'], outputs: ['y'] }],
    output: 'y',
  },
  ReduceSum: {
    inputs: [{ name: 'x', dims: [2, 3, 4] }],
    consts: [i64('axes', [0])],
    nodes: [{ op: 'ReduceSum', inputs: ['x', 'axes'], outputs: ['y'], attrs: { keepdims: A.i(0) } }],
    output: 'y',
  },
  LayerNormalization: {
    inputs: [
      { name: 'x', dims: [2, 3, 5] },
      { name: 'g', dims: [5] },
      { name: 'b', dims: [5] },
    ],
    nodes: [{ op: 'LayerNormalization', inputs: ['x', 'g', 'b'], outputs: ['y'], attrs: { axis: A.i(-1), epsilon: A.f(1e-5) } }],
    output: 'y',
  },
  'LayerNormalization (two normalised axes)': {
    inputs: [
      { name: 'x', dims: [2, 3, 4] },
      { name: 'g', dims: [3, 4] },
      { name: 'b', dims: [3, 4] },
    ],
    nodes: [{ op: 'LayerNormalization', inputs: ['x', 'g', 'b'], outputs: ['y'], attrs: { axis: A.i(1) } }],
    output: 'y',
  },
  Softmax: {
    inputs: [{ name: 'x', dims: [2, 3, 4] }],
    nodes: [{ op: 'Softmax', inputs: ['x'], outputs: ['y'], attrs: { axis: A.i(-1) } }],
    output: 'y',
  },
  'Softmax (middle axis)': {
    inputs: [{ name: 'x', dims: [2, 3, 4] }],
    nodes: [{ op: 'Softmax', inputs: ['x'], outputs: ['y'], attrs: { axis: A.i(1) } }],
    output: 'y',
  },
  'Erf (exact GELU)': {
    inputs: [{ name: 'x', dims: [2, 5] }],
    consts: [fconst('s2', [Math.SQRT2]), fconst('one', [1]), fconst('half', [0.5])],
    nodes: [
      { op: 'Div', inputs: ['x', 's2'], outputs: ['a'] },
      { op: 'Erf', inputs: ['a'], outputs: ['e'] },
      { op: 'Add', inputs: ['e', 'one'], outputs: ['p'] },
      { op: 'Mul', inputs: ['x', 'p'], outputs: ['q'] },
      { op: 'Mul', inputs: ['q', 'half'], outputs: ['y'] },
    ],
    output: 'y',
  },
  Erf: { inputs: [{ name: 'x', dims: [7] }], nodes: [{ op: 'Erf', inputs: ['x'], outputs: ['y'] }], output: 'y' },
  Tanh: { inputs: [{ name: 'x', dims: [2, 3] }], nodes: [{ op: 'Tanh', inputs: ['x'], outputs: ['y'] }], output: 'y' },
  Relu: { inputs: [{ name: 'x', dims: [3, 4] }], nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], output: 'y' },
  Sigmoid: { inputs: [{ name: 'x', dims: [3, 4] }], nodes: [{ op: 'Sigmoid', inputs: ['x'], outputs: ['y'] }], output: 'y' },
  'Exp, Log, Neg, Reciprocal': {
    inputs: [{ name: 'x', dims: [3, 2], positive: true }],
    nodes: [
      { op: 'Log', inputs: ['x'], outputs: ['a'] },
      { op: 'Exp', inputs: ['x'], outputs: ['b'] },
      { op: 'Neg', inputs: ['b'], outputs: ['c'] },
      { op: 'Reciprocal', inputs: ['x'], outputs: ['d'] },
      { op: 'Sum', inputs: ['a', 'c', 'd'], outputs: ['y'] },
    ],
    output: 'y',
  },
  'Mean (broadcast inputs)': {
    inputs: [
      { name: 'a', dims: [2, 3] },
      { name: 'c', dims: [3] },
      { name: 'd', dims: [2, 3] },
    ],
    nodes: [{ op: 'Mean', inputs: ['a', 'c', 'd'], outputs: ['y'] }],
    output: 'y',
  },
  Transpose: {
    inputs: [{ name: 'x', dims: [2, 3, 4] }],
    nodes: [{ op: 'Transpose', inputs: ['x'], outputs: ['y'], attrs: { perm: A.is([2, 0, 1]) } }],
    output: 'y',
  },
  'Reshape (shape from a shape-only subgraph)': {
    inputs: [{ name: 'x', dims: [2, 3, 4] }],
    consts: [i64('zero', [0], []), i64('tail', [-1])],
    nodes: [
      { op: 'Shape', inputs: ['x'], outputs: ['s'] },
      { op: 'Gather', inputs: ['s', 'zero'], outputs: ['n'], attrs: { axis: A.i(0) } },
      { op: 'Unsqueeze', inputs: ['n', 'zero1'], outputs: ['n1'] },
      { op: 'Concat', inputs: ['n1', 'tail'], outputs: ['shape'], attrs: { axis: A.i(0) } },
      { op: 'Reshape', inputs: ['x', 'shape'], outputs: ['y'] },
    ],
    output: 'y',
  },
  'Squeeze / Unsqueeze / Flatten': {
    inputs: [{ name: 'x', dims: [2, 1, 3] }],
    consts: [i64('ax1', [1]), i64('ax0', [0])],
    nodes: [
      { op: 'Squeeze', inputs: ['x', 'ax1'], outputs: ['a'] },
      { op: 'Unsqueeze', inputs: ['a', 'ax0'], outputs: ['b'] },
      { op: 'Flatten', inputs: ['b'], outputs: ['y'], attrs: { axis: A.i(2) } },
    ],
    output: 'y',
  },
  Concat: {
    inputs: [
      { name: 'x', dims: [2, 3] },
      { name: 'z', dims: [2, 2] },
    ],
    nodes: [{ op: 'Concat', inputs: ['x', 'z', 'x'], outputs: ['y'], attrs: { axis: A.i(-1) } }],
    output: 'y',
  },
  "Split (unequal parts, one part unused: timm's packed qkv)": {
    inputs: [{ name: 'x', dims: [2, 7] }],
    consts: [i64('sizes', [2, 4, 1])],
    nodes: [
      { op: 'Split', inputs: ['x', 'sizes'], outputs: ['a', 'b', 'c'], attrs: { axis: A.i(-1) } },
      { op: 'Mul', inputs: ['a', 'a'], outputs: ['a2'] },
      { op: 'ReduceSum', inputs: ['b'], outputs: ['bs'], attrs: { keepdims: A.i(1) } },
      { op: 'Add', inputs: ['a2', 'bs'], outputs: ['y'] },
    ],
    output: 'y',
  },
  'Gather (embedding rows, repeated and negative indices)': {
    inputs: [{ name: 'w', dims: [5, 3] }],
    consts: [i64('idx', [0, 2, 2, -1], [2, 2])],
    nodes: [{ op: 'Gather', inputs: ['w', 'idx'], outputs: ['y'], attrs: { axis: A.i(0) } }],
    output: 'y',
  },
  'Gather (axis 1, scalar index: CLS token)': {
    inputs: [{ name: 'x', dims: [2, 4, 3] }],
    consts: [i64('idx', [0], [])],
    nodes: [{ op: 'Gather', inputs: ['x', 'idx'], outputs: ['y'], attrs: { axis: A.i(1) } }],
    output: 'y',
  },
  'Slice (two axes, step 2, negative start)': {
    inputs: [{ name: 'x', dims: [4, 7] }],
    consts: [i64('st', [1, -6]), i64('en', [3, 100]), i64('ax', [0, 1]), i64('sp', [1, 2])],
    nodes: [{ op: 'Slice', inputs: ['x', 'st', 'en', 'ax', 'sp'], outputs: ['y'] }],
    output: 'y',
  },
  'Slice (negative step)': {
    inputs: [{ name: 'x', dims: [3, 5] }],
    consts: [i64('st', [-1]), i64('en', [-100]), i64('ax', [1]), i64('sp', [-2])],
    nodes: [{ op: 'Slice', inputs: ['x', 'st', 'en', 'ax', 'sp'], outputs: ['y'] }],
    output: 'y',
  },
  Expand: {
    inputs: [{ name: 'x', dims: [1, 3] }],
    consts: [i64('shape', [2, 4, 3])],
    nodes: [{ op: 'Expand', inputs: ['x', 'shape'], outputs: ['y'] }],
    output: 'y',
  },
  Where: {
    inputs: [
      { name: 'x', dims: [2, 3] },
      { name: 'z', dims: [3] },
    ],
    consts: [{ name: 'c', dataType: DT.BOOL, dims: [2, 3], values: [1, 0, 1, 0, 0, 1] }],
    nodes: [{ op: 'Where', inputs: ['c', 'x', 'z'], outputs: ['y'] }],
    output: 'y',
  },
  'Cast (float ↔ double round trip)': {
    inputs: [{ name: 'x', dims: [2, 3] }],
    nodes: [
      { op: 'Cast', inputs: ['x'], outputs: ['d'], attrs: { to: A.i(DT.DOUBLE) } },
      { op: 'Mul', inputs: ['d', 'd'], outputs: ['e'] },
      { op: 'Cast', inputs: ['e'], outputs: ['y'], attrs: { to: A.i(DT.DOUBLE) } },
    ],
    output: 'y',
  },
  'MatMul (activations × weight)': {
    inputs: [
      { name: 'a', dims: [2, 3, 4] },
      { name: 'w', dims: [4, 5] },
    ],
    nodes: [{ op: 'MatMul', inputs: ['a', 'w'], outputs: ['y'] }],
    output: 'y',
  },
  'MatMul (batched, broadcast batch dims)': {
    inputs: [
      { name: 'a', dims: [2, 1, 3, 4] },
      { name: 'b', dims: [3, 4, 2] },
    ],
    nodes: [{ op: 'MatMul', inputs: ['a', 'b'], outputs: ['y'] }],
    output: 'y',
  },
  'MatMul (rank-1 operands)': {
    inputs: [
      { name: 'v', dims: [4] },
      { name: 'w', dims: [2, 4, 3] },
      { name: 'u', dims: [3] },
    ],
    nodes: [
      { op: 'MatMul', inputs: ['v', 'w'], outputs: ['t'] },
      { op: 'MatMul', inputs: ['t', 'u'], outputs: ['y'] },
    ],
    output: 'y',
  },
  'Conv (stride = kernel, patch embedding)': {
    inputs: [
      { name: 'x', dims: [2, 2, 6, 6] },
      { name: 'w', dims: [3, 2, 3, 3] },
      { name: 'b', dims: [3] },
    ],
    nodes: [{ op: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: { kernel_shape: A.is([3, 3]), strides: A.is([3, 3]) } }],
    output: 'y',
  },
  'Conv (stride = kernel, cropped border)': {
    inputs: [
      { name: 'x', dims: [1, 1, 7, 8] },
      { name: 'w', dims: [2, 1, 3, 3] },
    ],
    nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], attrs: { strides: A.is([3, 3]) } }],
    output: 'y',
  },
};

for (const [ta, tb] of [
  [0, 0],
  [0, 1],
  [1, 0],
  [1, 1],
]) {
  cases[`Gemm (transA=${ta}, transB=${tb}, alpha, beta, broadcast C)`] = {
    inputs: [
      { name: 'a', dims: ta ? [4, 3] : [3, 4] },
      { name: 'b', dims: tb ? [5, 4] : [4, 5] },
      { name: 'c', dims: [5] },
    ],
    nodes: [{ op: 'Gemm', inputs: ['a', 'b', 'c'], outputs: ['y'], attrs: { alpha: A.f(0.75), beta: A.f(1.5), transA: A.i(ta), transB: A.i(tb) } }],
    output: 'y',
  };
}
// The Reshape case's Unsqueeze needs its axes constant.
cases['Reshape (shape from a shape-only subgraph)'].consts!.push(i64('zero1', [0]));

for (const [name, graph] of Object.entries(cases)) {
  test(`gradient of ${name} matches finite differences`, async (t) => {
    const { dataType, entries } = await checkTinyGradients(graph);
    assert.equal(entries.length, graph.inputs.length);
    t.diagnostic(`${dataType}, worst relative error ${Math.max(...entries.map((e) => e.maxRelErr)).toExponential(1)}`);
  });
}

test('an op without a gradient rule on the gradient path is reported by name', async () => {
  const model = buildTiny(
    {
      inputs: [{ name: 'x', dims: [2, 3] }],
      nodes: [
        { op: 'Sin', inputs: ['x'], outputs: ['s'] },
        { op: 'Relu', inputs: ['s'], outputs: ['y'] },
      ],
      output: 'y',
    },
    DT.FLOAT,
  );
  await assert.rejects(buildGradientGraph(model, { wrt: ['x'], loss: 'weighted-sum' }), (err: unknown) => {
    assert.ok(err instanceof OtfuseError);
    assert.equal(err.code, 'UNSUPPORTED');
    assert.equal(err.node, 'Sin_0');
    assert.match(err.message, /Sin/);
    return true;
  });
});

test('an unsupported op off the gradient path is fine', async () => {
  const model = buildTiny(
    {
      inputs: [
        { name: 'x', dims: [2, 3] },
        { name: 'z', dims: [2, 3] },
      ],
      nodes: [
        { op: 'Sin', inputs: ['z'], outputs: ['s'] },
        { op: 'Mul', inputs: ['x', 's'], outputs: ['y'] },
      ],
      output: 'y',
    },
    DT.FLOAT,
  );
  const gg = await buildGradientGraph(model, { wrt: ['x'], loss: 'weighted-sum' });
  assert.deepEqual(gg.gradOutputs, ['grad:x']);
});
