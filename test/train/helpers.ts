// Shared helpers for the training tests (not a test file itself): tiny ONNX graphs built in code and a
// finite-difference check that runs them in float64 when ONNX Runtime has float64 kernels for the op.
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { OnnxModel } from '../../worker/onnx/model';
import { Attr, DT, makeTensor, toAttribute } from '../../worker/train/builder';
import { gradientCheck, GradCheckEntry } from '../../worker/train/gradcheck';
import type { Dataset } from '../../worker/data/dataset';

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, Attr>;
}

export interface TinyGraph {
  /** Float inputs get random values; `positive` ones are drawn from [0.5, 1.5]. */
  inputs: { name: string; dims: number[]; positive?: boolean }[];
  /** Constant (non-trainable) tensors: int64 indices/shapes, bool conditions, float exponents. */
  consts?: { name: string; dataType: number; dims: number[]; values: number[] }[];
  nodes: NodeSpec[];
  output: string;
  opset?: number;
}

let seed = 12345;
export function rand(): number {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
}

/** Builds the graph with float tensors of element type `dataType`; all float inputs are graph inputs. */
export function buildTiny(g: TinyGraph, dataType: number): OnnxModel {
  const vi = (name: string, dims: number[], dt: number) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: dt, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
  const graph = onnx.GraphProto.create({
    name: 'tiny',
    input: g.inputs.map((i) => vi(i.name, i.dims, dataType)),
    output: [onnx.ValueInfoProto.create({ name: g.output })],
    initializer: (g.consts ?? []).map((c) => makeTensor(c.name, c.dataType === DT.FLOAT ? dataType : c.dataType, c.dims, c.values)),
    node: g.nodes.map((n, k) =>
      onnx.NodeProto.create({
        opType: n.op,
        name: `${n.op}_${k}`,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attrs ?? {}).map(([name, a]) => toAttribute(name, a)),
      }),
    ),
  });
  const proto = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: g.opset ?? 17 }], graph, producerName: 'otfuse-test' });
  return new OnnxModel(proto, 'tiny.onnx');
}

function isMissingKernel(err: unknown): boolean {
  return /implementation|NOT_IMPLEMENTED|not supported|type.*double|Type Error/i.test(err instanceof Error ? err.message : String(err));
}

/**
 * Checks d(Σ out·w)/d(every input) against central differences. float64 first (tight tolerance);
 * float32 with a looser tolerance only where ONNX Runtime has no float64 kernel for an op in the graph.
 */
export async function checkTinyGradients(g: TinyGraph): Promise<{ dataType: 'float64' | 'float32'; entries: GradCheckEntry[] }> {
  for (const dataType of [DT.DOUBLE, DT.FLOAT]) {
    const model = buildTiny(g, dataType);
    const f64 = dataType === DT.DOUBLE;
    const make = (count: number, positive?: boolean) => Array.from({ length: count }, () => (positive ? 0.5 + rand() : rand() * 2 - 1));
    const feeds: Record<string, ort.Tensor> = {};
    for (const i of g.inputs) {
      const n = i.dims.reduce((a, b) => a * b, 1);
      const v = make(n, i.positive);
      feeds[i.name] = f64 ? new ort.Tensor('float64', Float64Array.from(v), i.dims) : new ort.Tensor('float32', Float32Array.from(v), i.dims);
    }
    let entries: GradCheckEntry[];
    try {
      // The output shape is needed for the loss weights: run the forward once.
      const s = await ort.InferenceSession.create(model.toBytes(), { logSeverityLevel: 3 });
      const out = (await s.run(feeds))[g.output];
      await s.release();
      const wv = make(out.data.length);
      feeds.loss_weights = f64 ? new ort.Tensor('float64', Float64Array.from(wv), out.dims) : new ort.Tensor('float32', Float32Array.from(wv), out.dims);
      entries = await gradientCheck(model, { feeds, wrt: g.inputs.map((i) => i.name), loss: 'weighted-sum', eps: f64 ? 1e-6 : 1e-2, samplesPerTensor: 8 });
    } catch (err) {
      if (f64 && isMissingKernel(err)) continue;
      throw err;
    }
    const tol = f64 ? 1e-6 : 2e-2;
    for (const e of entries) {
      assert.ok(
        e.maxRelErr <= tol,
        `${e.name}: gradient off by ${e.maxRelErr.toExponential(2)} (relative, ${f64 ? 'float64' : 'float32'}); points ${JSON.stringify(e.points)}`,
      );
      assert.ok(e.scale > 0, `${e.name}: gradient is all zeros`);
    }
    return { dataType: f64 ? 'float64' : 'float32', entries };
  }
  throw new Error('unreachable');
}

/** Gradient-check feeds for an image classifier: the rows' pixel_values and their int64 labels. */
export function imageFeeds(data: Dataset, rows: number[]): Record<string, ort.Tensor> {
  const batch = data.take(rows);
  const x = batch.feeds[data.arrays[0].name];
  return {
    pixel_values: new ort.Tensor('float32', x.data as Float32Array, x.dims),
    labels: new ort.Tensor(
      'int64',
      BigInt64Array.from(batch.labels, (v) => BigInt(v)),
      [batch.labels.length],
    ),
  };
}

/** The entries whose analytic and numeric gradients disagree beyond 2e-3 + 5 % of the larger (whole-model checks). */
export function gradientMismatches(entries: GradCheckEntry[]): string[] {
  return entries
    .filter((e) => e.points.some((p) => Math.abs(p.analytic - p.numeric) > 2e-3 + 5e-2 * Math.max(Math.abs(p.analytic), Math.abs(p.numeric))))
    .map((e) => `${e.name}: ${JSON.stringify(e.points)}`);
}
