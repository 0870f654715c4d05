// The Sinkhorn–Knopp iteration as one float64 ONNX graph (built once, symbolic dims), its inputs for one problem,
// and its outputs read back as sinkhorn()'s result. Used by the ONNX Runtime path (sinkhorn-ort.ts) and by the
// synchronous engine that sinkhorn() can hand large problems to (sinkhorn.ts). See sinkhorn-ort.ts for the iterate.
import type { onnx } from 'onnx-proto';
import type { SinkhornResult } from './validate';

/**
 * Default phase1Iters: runs that meet the stopping rule at the check after iteration 0, 10, 20 or 30 (reg ≳ 0.05 on
 * max-normalised costs) never transpose; longer runs transpose once and save ≈ 6 ms per iteration at 3072².
 */
const PHASE1_ITERS = 31;

/** Same limit as sinkhorn()'s 'auto' method: largest (row/column minimum of M)/reg that plain Knopp takes. */
const AUTO_LIMIT = 200;

// onnx.TensorProto.DataType and onnx.AttributeProto.AttributeType values
const F64 = 11,
  I64 = 7,
  BOOL = 9;
const ATTR_INT = 2,
  ATTR_GRAPH = 5,
  ATTR_INTS = 7;

type Dim = number | string;
function valueInfo(name: string, elemType: number, dims?: Dim[]): onnx.IValueInfoProto {
  const tensorType: onnx.TypeProto.ITensor = { elemType };
  if (dims) tensorType.shape = { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) };
  return { name, type: { tensorType } };
}
function node(opType: string, input: string[], output: string[], attribute: onnx.IAttributeProto[] = []): onnx.INodeProto {
  return { opType, input, output, attribute, name: output[0] };
}
const attrInt = (name: string, i: number): onnx.IAttributeProto => ({ name, type: ATTR_INT, i });
const attrInts = (name: string, ints: number[]): onnx.IAttributeProto => ({ name, type: ATTR_INTS, ints });
function tensorI64(name: string, values: number[], dims: number[]): onnx.ITensorProto {
  return { name, dataType: I64, dims, rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) };
}
function tensorF64(name: string, values: number[], dims: number[]): onnx.ITensorProto {
  return { name, dataType: F64, dims, rawData: new Uint8Array(Float64Array.from(values).buffer) };
}

/**
 * Inputs: M [n,m], a [n,1], b [m,1], u0 [n,1], v0 [m,1], negInvReg [], negLimit [] (−AUTO_LIMIT for the underflow test,
 * −∞ to skip it), colLimit [] (e^−AUTO_LIMIT·(1+1e-9), or −∞), stopThr [], maxIter [] int64.
 * Outputs: plan [n,m], cost [], err [] (last checked ‖colsum − b‖₂), iters [] int64, bad [] bool (NaN/Inf/zero in the
 * iterate), started [] bool (false: 'auto' underflow test failed, loop not run), rowErr [], colErr [].
 * A non-finite entry of M shows as a non-finite cost (NaN/−∞ also as `bad`): the caller hands those to the JS solver.
 *
 * Kᵀu runs in two phases. The first `phase1Iters` iterations use Gemm(transA) on K (MLAS packs the transposed
 * operand on each call: ≈ 2.5× a plain matvec in float64); if the run goes on, an `If` transposes K once (an ORT
 * float64 Transpose costs about as much as 14 such Gemm−MatMul differences at 3072²) and a second Loop continues
 * with MatMul on Kᵀ. The iteration counter is carried, so POT's every-10th check stays on the same iterations.
 */
export function buildSinkhornModel(): Uint8Array {
  const loopStates = (pre: string): string[] => ['u', 'v', 'ktu', 'kv', 'err', 'bad', 'stop', 'it'].map((x) => `${pre}${x}`);
  const stateInfo = (names: string[]): onnx.IValueInfoProto[] =>
    names.map((x, k) => valueInfo(x, k === 4 ? F64 : k === 5 || k === 6 ? BOOL : k === 7 ? I64 : F64, k >= 4 ? [] : undefined));
  /** One Sinkhorn iteration; Kᵀu with Gemm(transA) on K, or MatMul on KT. Names carry the prefix p. */
  const body = (p: string, useKT: boolean): onnx.IGraphProto => {
    const [u, v, ktu, kv, err, bad, stop, it] = loopStates(`${p}out_`);
    const [, , ktuIn, , errIn, , , itIn] = loopStates(`${p}in_`);
    const q = (x: string): string => `${p}${x}`;
    return {
      name: q('iteration'),
      input: [valueInfo(q('iter'), I64, []), valueInfo(q('cond_in'), BOOL, []), ...stateInfo(loopStates(`${p}in_`))],
      output: [valueInfo(q('cond_out'), BOOL, []), ...stateInfo([u, v, ktu, kv, err, bad, stop, it])],
      initializer: [tensorI64(q('ten'), [10], []), tensorI64(q('zero_i'), [0], []), tensorI64(q('one_i'), [1], []), tensorF64(q('zero_f'), [0], [])],
      node: [
        node('Div', ['b', ktuIn], [v]),
        node('MatMul', ['K', v], [kv]),
        node('Div', ['a', kv], [u]),
        useKT ? node('MatMul', ['KT', u], [ktu]) : node('Gemm', ['K', u], [ktu], [attrInt('transA', 1)]),
        // numerical trouble: any NaN/Inf in u or v (a zero in ktu makes v infinite or NaN)
        node('ReduceSum', [u], [q('su')], [attrInt('keepdims', 0)]),
        node('ReduceSum', [v], [q('sv')], [attrInt('keepdims', 0)]),
        node('Add', [q('su'), q('sv')], [q('suv')]),
        node('Sub', [q('suv'), q('suv')], [q('zuv')]),
        node('Equal', [q('zuv'), q('zero_f')], [q('finite')]),
        node('Not', [q('finite')], [bad]),
        // POT's check: every 10th iteration (global count), ‖v ⊙ Kᵀu − b‖₂
        node('Mod', [itIn, q('ten')], [q('it_mod')]),
        node('Equal', [q('it_mod'), q('zero_i')], [q('check')]),
        node('Mul', [v, ktu], [q('colsum')]),
        node('Sub', [q('colsum'), 'b'], [q('coldiff')]),
        node('ReduceSumSquare', [q('coldiff')], [q('err2')], [attrInt('keepdims', 0)]),
        node('Sqrt', [q('err2')], [q('err_now')]),
        node('Where', [q('check'), q('err_now'), errIn], [err]),
        node('Less', [q('err_now'), 'stopThr'], [q('below')]),
        node('And', [q('check'), q('below')], [stop]),
        node('Or', [stop, bad], [q('halt')]),
        node('Not', [q('halt')], [q('cond_out')]),
        node('Add', [itIn, q('one_i')], [it]),
      ],
    };
  };
  const s0 = loopStates('s0_'),
    s1 = loopStates('s1_'),
    sF = loopStates('sF_'),
    s2 = loopStates('s2_');
  const phase2: onnx.IGraphProto = {
    name: 'phase2',
    input: [],
    output: stateInfo(s2),
    node: [
      node('Transpose', ['K'], ['KT'], [attrInts('perm', [1, 0])]),
      node('Sub', ['maxIter', s1[7]], ['trip2']),
      node('Loop', ['trip2', 'more', ...s1], s2, [{ name: 'body', type: ATTR_GRAPH, g: body('b2_', true) }]),
    ],
  };
  const skip2: onnx.IGraphProto = {
    name: 'skip2',
    input: [],
    output: stateInfo(loopStates('k2_')),
    node: s1.map((x, k) => node('Identity', [x], [loopStates('k2_')[k]])),
  };
  const graph: onnx.IGraphProto = {
    name: 'sinkhorn_knopp',
    input: [
      valueInfo('M', F64, ['n', 'm']),
      valueInfo('a', F64, ['n', 1]),
      valueInfo('b', F64, ['m', 1]),
      valueInfo('u0', F64, ['n', 1]),
      valueInfo('v0', F64, ['m', 1]),
      valueInfo('negInvReg', F64, []),
      valueInfo('negLimit', F64, []),
      valueInfo('colLimit', F64, []),
      valueInfo('stopThr', F64, []),
      valueInfo('maxIter', I64, []),
      valueInfo('phase1Iters', I64, []),
    ],
    output: [
      valueInfo('plan', F64, ['n', 'm']),
      valueInfo('cost', F64, []),
      valueInfo('err', F64, []),
      valueInfo('iters', I64, []),
      valueInfo('bad', BOOL, []),
      valueInfo('started', BOOL, []),
      valueInfo('rowErr', F64, []),
      valueInfo('colErr', F64, []),
    ],
    initializer: [tensorF64(s0[4], [Infinity], []), tensorI64(s0[7], [0], []), tensorI64('row_shape', [1, -1], [2])],
    node: [
      // underflow test of sinkhorn()'s 'auto' (max over rows and columns of min(M)/reg < AUTO_LIMIT). Rows: exact,
      // on M (a contiguous reduction). Columns: from the column sums S = n·Kᵀ(1/n) that the first iteration needs
      // anyway, since max_i K_ij ∈ [S_j/n, S_j]: every column passes if min_j S_j/n > e^−AUTO_LIMIT (colLimit, with
      // a 1e-9 margin); otherwise the JS solver makes the exact decision.
      node('ReduceMin', ['M'], ['rowMin'], [attrInts('axes', [1]), attrInt('keepdims', 0)]),
      node('ReduceMax', ['rowMin'], ['worstRow'], [attrInt('keepdims', 0)]),
      node('Mul', ['worstRow', 'negInvReg'], ['worstExp']),
      node('Greater', ['worstExp', 'negLimit'], ['rowsOk']),
      // K = exp(−M/reg) (as M * (−1/reg), like sinkhorn())
      node('Mul', ['M', 'negInvReg'], ['Mscaled']),
      node('Exp', ['Mscaled'], ['K']),
      node('Gemm', ['K', 'u0'], [s0[2]], [attrInt('transA', 1)]),
      node('ReduceMin', [s0[2]], ['colSumMin'], [attrInt('keepdims', 0)]),
      node('Greater', ['colSumMin', 'colLimit'], ['colsOk']),
      node('And', ['rowsOk', 'colsOk'], ['started']),
      node('Identity', ['u0'], [s0[0]]),
      node('Identity', ['v0'], [s0[1]]),
      node('Identity', ['u0'], [s0[3]]), // placeholder for K v
      node('Not', ['started'], [s0[5]]),
      node('Not', ['started'], [s0[6]]),
      // phase 1: Gemm(transA) for Kᵀu
      node('Min', ['maxIter', 'phase1Iters'], ['trip1']),
      node('Loop', ['trip1', 'started', ...s0], s1, [{ name: 'body', type: ATTR_GRAPH, g: body('b1_', false) }]),
      // phase 2 (only if the run goes on): Kᵀ once, then MatMul
      node('Or', [s1[5], s1[6]], ['done1']),
      node('Not', ['done1'], ['going']),
      node('Less', [s1[7], 'maxIter'], ['left']),
      node('And', ['going', 'left'], ['more']),
      node('If', ['more'], sF, [
        { name: 'then_branch', type: ATTR_GRAPH, g: phase2 },
        { name: 'else_branch', type: ATTR_GRAPH, g: skip2 },
      ]),
      node('And', [sF[5], 'started'], ['bad']),
      node('Identity', [sF[4]], ['err']),
      node('Identity', [sF[7]], ['iters']),
      // plan = diag(u) K diag(v), its cost and marginal errors (rows: u ⊙ K v with the last iteration's K v;
      // columns: v ⊙ Kᵀu)
      node('Reshape', [sF[1], 'row_shape'], ['vRow']),
      node('Mul', [sF[0], 'K'], ['uK']),
      node('Mul', ['uK', 'vRow'], ['plan']),
      node('Mul', ['plan', 'M'], ['planM']),
      node('ReduceSum', ['planM'], ['cost'], [attrInt('keepdims', 0)]),
      node('Mul', [sF[0], sF[3]], ['rowSum']),
      node('Sub', ['rowSum', 'a'], ['rowDiff']),
      node('Abs', ['rowDiff'], ['rowAbs']),
      node('ReduceMax', ['rowAbs'], ['rowErr'], [attrInt('keepdims', 0)]),
      node('Mul', [sF[1], sF[2]], ['colSum']),
      node('Sub', ['colSum', 'b'], ['colDiff']),
      node('Abs', ['colDiff'], ['colAbs']),
      node('ReduceMax', ['colAbs'], ['colErr'], [attrInt('keepdims', 0)]),
    ],
  };
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded lazily on first use
  const { onnx: proto } = require('onnx-proto') as typeof import('onnx-proto');
  const model = proto.ModelProto.create({ irVersion: 8, producerName: 'otfuse', opsetImport: [{ domain: '', version: 17 }], graph });
  return proto.ModelProto.encode(model).finish();
}

/** A plain input of the Knopp graph (turned into an ort.Tensor by the async path, sent as-is by the sync one). */
export type SinkhornFeed = { type: 'float64'; data: Float64Array; dims: number[] } | { type: 'int64'; data: BigInt64Array; dims: number[] };

/** The Knopp graph's inputs for one problem (POT's start u = 1/n, v = 1/m; the 'auto' underflow limits). */
export function sinkhornFeeds(
  a: Float64Array,
  b: Float64Array,
  M: Float64Array,
  reg: number,
  options: { auto: boolean; stopThr: number; numItermax: number; phase1Iters?: number },
): Record<string, SinkhornFeed> {
  const n = a.length,
    m = b.length;
  const f64 = (data: Float64Array, dims: number[]): SinkhornFeed => ({ type: 'float64', data, dims });
  const i64 = (v: number): SinkhornFeed => ({ type: 'int64', data: BigInt64Array.from([BigInt(v)]), dims: [] });
  return {
    M: f64(M, [n, m]),
    a: f64(a, [n, 1]),
    b: f64(b, [m, 1]),
    u0: f64(new Float64Array(n).fill(1 / n), [n, 1]),
    v0: f64(new Float64Array(m).fill(1 / m), [m, 1]),
    negInvReg: f64(new Float64Array([-1 / reg]), []),
    negLimit: f64(new Float64Array([options.auto ? -AUTO_LIMIT : -Infinity]), []),
    colLimit: f64(new Float64Array([options.auto ? Math.exp(-AUTO_LIMIT) * (1 + 1e-9) : -Infinity]), []),
    stopThr: f64(new Float64Array([options.stopThr]), []),
    maxIter: i64(options.numItermax),
    phase1Iters: i64(options.phase1Iters ?? PHASE1_ITERS),
  };
}

/**
 * The Knopp graph's outputs as sinkhorn()'s result, or undefined when the JS solver must answer instead: non-finite
 * M (JS raises the error), underflow under 'auto' (JS picks the stabilised solver), or numerical trouble in the
 * iterate (JS reverts to the previous iterate or switches solver, exactly like sinkhorn()).
 */
export function readSinkhornOutputs(out: Record<string, { data: unknown }>, n: number, m: number, reg: number, stopThr: number): SinkhornResult | undefined {
  const scalar = (name: string): number => Number((out[name].data as Float64Array | BigInt64Array)[0]);
  const flag = (name: string): boolean => Boolean((out[name].data as Uint8Array)[0]);
  const cost = scalar('cost');
  if (!flag('started') || flag('bad') || !Number.isFinite(cost)) return undefined;
  const err = scalar('err');
  return {
    plan: out.plan.data as Float64Array,
    n,
    m,
    cost,
    method: 'knopp',
    reg,
    iterations: scalar('iters'),
    converged: err < stopThr,
    marginalError: err,
    rowError: scalar('rowErr'),
    colError: scalar('colErr'),
    numericalError: false,
  };
}
