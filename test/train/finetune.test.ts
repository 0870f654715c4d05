// The training step graph's optimizer against a plain-JS AdamW, and the finetune loop end to end on the
// bundled Fashion-MNIST subsets: loss goes down, training from scratch learns, cancel and NaN leave only
// valid checkpoints behind.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { encodeNpz } from '../../worker/data/npy';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { OtfuseError } from '../../worker/errors';
import { A, DT } from '../../worker/train/builder';
import { buildGradientGraph, buildTrainingGraph, flattenParams, gradOutput, trainableParameters } from '../../worker/train/graphs';
import { adamwStep } from '../../worker/train/adamw';
import { defaultWarmupSteps, finetuneModel, learningRate, paramFeeds } from '../../worker/train/finetune';
import type { ProgressEvent } from '../../worker/types';
import { buildTiny, rand } from './helpers';

const VIT = path.join(process.cwd(), 'test/fixtures/vit/vit48_s10.onnx');
const TRAIN = path.join(process.cwd(), 'examples/data/fmnist-train-5k.json');
const TEST = path.join(process.cwd(), 'examples/data/fmnist-test-2k.json');

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-train-'));
}

test('default warmup: 5 % of the steps, at least min(4, a quarter), at most 100', () => {
  assert.deepEqual([1, 3, 8, 16, 79, 80, 200, 2000, 5000].map(defaultWarmupSteps), [0, 0, 2, 4, 4, 4, 10, 100, 100]);
});

test('learning-rate schedule: linear warmup, cosine decay to 0', () => {
  assert.equal(learningRate(1, 100, 1e-3, 10), 1e-4);
  assert.equal(learningRate(10, 100, 1e-3, 10), 1e-3);
  assert.ok(Math.abs(learningRate(55, 100, 1e-3, 10) - 5e-4) < 1e-12);
  assert.ok(learningRate(100, 100, 1e-3, 10) < 1e-12);
  assert.ok(learningRate(60, 100, 1e-3, 10) < learningRate(40, 100, 1e-3, 10));
});

test("training step: the graph's gradient and norm, then host AdamW (clipping, bias correction, decoupled decay) match a float64 reference", async () => {
  // A linear classifier with trainable weight and bias, as initializers.
  const model = buildTiny(
    {
      inputs: [{ name: 'x', dims: [6, 4] }],
      nodes: [{ op: 'Gemm', inputs: ['x', 'w', 'b'], outputs: ['logits'], attrs: { transB: A.i(1) } }],
      output: 'logits',
    },
    DT.FLOAT,
  );
  model.graph.initializer!.push(
    { name: 'w', dataType: DT.FLOAT, dims: [3, 4], rawData: new Uint8Array(Float32Array.from({ length: 12 }, () => rand() - 0.5).buffer) },
    { name: 'b', dataType: DT.FLOAT, dims: [3], rawData: new Uint8Array(Float32Array.from({ length: 3 }, () => rand() - 0.5).buffer) },
  );
  // Saved and reloaded so that the initializers added above are indexed like in any loaded model.
  const reloaded = loadModelFromProto(model);
  const settings = { weightDecay: 0.1, clipNorm: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, labelSmoothing: 0.1 };
  const tg = await buildTrainingGraph(reloaded, { labelSmoothing: settings.labelSmoothing });
  const gg = await buildGradientGraph(reloaded, { labelSmoothing: 0.1 });
  const stepSession = await ort.InferenceSession.create(tg.model.toBytes(), { logSeverityLevel: 3 });
  const gradSession = await ort.InferenceSession.create(gg.model.toBytes(), { logSeverityLevel: 3 });
  const layout = tg.layout;
  // The step graph is topologically sorted (ONNX requires it; the parameters are graph inputs, read as views).
  const known = new Set([...(tg.model.graph.input ?? []).map((i) => i.name), ...tg.model.initializerNames(), '']);
  for (const n of tg.model.nodes) {
    for (const i of n.input ?? []) assert.ok(known.has(i), `node ${n.name} reads '${i}' before it is produced`);
    for (const o of n.output ?? []) known.add(o);
  }
  assert.deepEqual(
    layout.slots.map((s) => s.name),
    (tg.model.graph.input ?? []).map((i) => i.name).filter((n) => n === 'w' || n === 'b'),
  );
  assert.deepEqual(
    layout.slots.map((s) => [s.name, s.decay]),
    [
      ['w', true],
      ['b', false],
    ],
  );
  let p = flattenParams(reloaded, layout);
  let m = new Float32Array(layout.total);
  let v = new Float32Array(layout.total);
  for (let step = 1; step <= 3; step++) {
    const x = new ort.Tensor(
      'float32',
      Float32Array.from({ length: 24 }, () => rand() * 2 - 1),
      [6, 4],
    );
    const labels = new ort.Tensor('int64', BigInt64Array.from([0n, 1n, 2n, 1n, 0n, 2n]), [6]);
    const lr = 0.01 * step;
    const out = await stepSession.run({ x, labels, ...paramFeeds(layout, p) });
    // Reference: gradients from the gradient graph, then the textbook update in float64.
    const feeds: Record<string, ort.Tensor> = { x, labels };
    for (const s of layout.slots) feeds[s.name] = new ort.Tensor('float32', p.slice(s.offset, s.offset + s.size), s.dims);
    const g = await gradSession.run(feeds);
    assert.ok(Math.abs((g.loss.data as Float32Array)[0] - (out.loss.data as Float32Array)[0]) < 1e-6);
    const grad = new Float64Array(layout.total);
    for (const s of layout.slots) grad.set(g[`grad:${s.name}`].data as Float32Array, s.offset);
    const norm = Math.sqrt(grad.reduce((a, c) => a + c * c, 0));
    assert.ok(Math.abs(norm - (out.grad_norm.data as Float32Array)[0]) < 1e-5 * Math.max(1, norm));
    const scale = Math.min(1, settings.clipNorm / (norm + 1e-6));
    assert.ok(scale < 1, 'the test exercises clipping');
    const nextP = new Float32Array(layout.total);
    const nextM = new Float32Array(layout.total);
    const nextV = new Float32Array(layout.total);
    for (let i = 0; i < layout.total; i++) {
      const gi = grad[i] * scale;
      nextM[i] = 0.9 * m[i] + 0.1 * gi;
      nextV[i] = 0.999 * v[i] + 0.001 * gi * gi;
      const mhat = nextM[i] / (1 - 0.9 ** step);
      const vhat = nextV[i] / (1 - 0.999 ** step);
      const decay = i < layout.decayed ? settings.weightDecay : 0;
      nextP[i] = p[i] * (1 - lr * decay) - (lr * mhat) / (Math.sqrt(vhat) + 1e-8);
    }
    const close = (a: Float32Array, b: Float32Array, what: string) => {
      for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 + 1e-4 * Math.abs(b[i]), `${what}[${i}] at step ${step}: ${a[i]} vs ${b[i]}`);
    };
    const stepGrad = new Float32Array(layout.total);
    for (const s of layout.slots) stepGrad.set(out[gradOutput(s.name)].data as Float32Array, s.offset);
    for (let i = 0; i < layout.total; i++) assert.ok(Math.abs(stepGrad[i] - grad[i]) <= 1e-6 + 1e-5 * Math.abs(grad[i]), `grad[${i}]`);
    // The host update, in place, from the graph's gradient and norm.
    const hp = Float32Array.from(p),
      hm = Float32Array.from(m),
      hv = Float32Array.from(v);
    adamwStep(hp, hm, hv, stepGrad, (out.grad_norm.data as Float32Array)[0], { ...settings, lr, step, decayed: layout.decayed });
    close(hp, nextP, 'params');
    close(hm, nextM, 'm');
    close(hv, nextV, 'v');
    p = nextP;
    m = nextM;
    v = nextV;
  }
  await stepSession.release();
  await gradSession.release();
});

function loadModelFromProto(model: ReturnType<typeof buildTiny>) {
  const dir = tmpDir();
  const file = path.join(dir, 'tiny.onnx');
  model.save(file);
  return loadModel(file);
}

test('finetuning a fixture parent lowers its training loss (5k subset, one epoch)', async () => {
  const dir = tmpDir();
  const output = path.join(dir, 'ft.onnx');
  const train = openDataset(TRAIN);
  const before = await evaluateModel(loadModel(VIT), train, { batchSize: 500 });
  const events: ProgressEvent[] = [];
  const result = await finetuneModel({ model: VIT, data: TRAIN, evalData: TEST, output, epochs: 1, lr: 3e-4, seed: 1 }, { onProgress: (e) => events.push(e) });
  const tuned = loadModel(output);
  const after = await evaluateModel(tuned, train, { batchSize: 500 });
  // The checkpoint is the original inference graph with new initializer values, nothing else.
  const original = loadModel(VIT);
  assert.deepEqual(tuned.summary().inputs, original.summary().inputs);
  assert.deepEqual(tuned.summary().outputs, original.summary().outputs);
  assert.deepEqual(tuned.summary().opHistogram, original.summary().opHistogram);
  assert.deepEqual(tuned.initializerNames(), original.initializerNames());
  assert.equal(result.steps, Math.ceil(5000 / 128));
  assert.ok(after.loss < before.loss - 0.002, `training loss ${before.loss.toFixed(4)} → ${after.loss.toFixed(4)}`);
  assert.equal(result.evals.length, 1);
  assert.ok(result.evals[0].accuracy > 0.83, `test accuracy ${result.evals[0].accuracy}`);
  const metrics = events.filter((e) => e.stage === 'finetune' && e.metrics?.loss !== undefined);
  assert.ok(metrics.length >= 3);
  for (const e of metrics) for (const k of ['loss', 'lr', 'samplesPerSecond']) assert.ok(Number.isFinite(e.metrics![k]), k);
  assert.ok(result.samplesPerSecond > 0 && result.history.length > 0);
});

test('training a re-initialised fixture ViT from scratch learns (5k subset, 5 epochs ≥ 70 % on the 2k test subset)', async () => {
  const dir = tmpDir();
  const output = path.join(dir, 'scratch.onnx');
  const result = await finetuneModel(
    { model: VIT, data: TRAIN, evalData: TEST, output, epochs: 5, batchSize: 64, lr: 2e-3, reinitialize: true, seed: 3, evalBefore: true },
    {},
  );
  assert.ok(result.initial!.accuracy < 0.2, `a fresh model guesses (${result.initial!.accuracy})`);
  const final = result.evals[result.evals.length - 1].accuracy;
  assert.ok(final >= 0.7, `from-scratch accuracy ${final}`);
  const check = await evaluateModel(loadModel(output), openDataset(TEST), { batchSize: 500 });
  assert.equal(check.accuracy, result.best!.accuracy, 'the written checkpoint is the best epoch');
});

test('cancel mid-epoch: the error is CANCELLED and only the last complete checkpoint exists', async () => {
  const dir = tmpDir();
  const output = path.join(dir, 'cancel.onnx');
  const controller = new AbortController();
  const spec = { path: TRAIN, limit: 1000 };
  const run = finetuneModel(
    { model: VIT, data: spec, output, epochs: 3, batchSize: 50, keep: 'last' },
    {
      signal: controller.signal,
      onProgress: (e) => {
        if ((e.done ?? 0) >= 30) controller.abort();
      },
    },
  );
  await assert.rejects(run, (err: unknown) => err instanceof OtfuseError && err.code === 'CANCELLED');
  assert.deepEqual(fs.readdirSync(dir), ['cancel.onnx'], 'no temporary or partial files');
  const kept = loadModel(output);
  for (const name of trainableParameters(kept)) assert.ok(kept.getInitializer(name).data.every(Number.isFinite));
  const r = await evaluateModel(kept, openDataset(TEST), { limit: 200 });
  assert.ok(r.accuracy > 0.5);

  // Cancelled before any checkpoint: nothing is written at all.
  const dir2 = tmpDir();
  const c2 = new AbortController();
  await assert.rejects(
    finetuneModel(
      { model: VIT, data: spec, output: path.join(dir2, 'x.onnx'), epochs: 1, batchSize: 50 },
      {
        signal: c2.signal,
        onProgress: (e) => {
          if ((e.done ?? 0) >= 10) c2.abort();
        },
      },
    ),
    (err: unknown) => err instanceof OtfuseError && err.code === 'CANCELLED',
  );
  assert.deepEqual(fs.readdirSync(dir2), []);
});

test('a NaN loss stops the run with a clear message and keeps the last good parameters', async () => {
  const dir = tmpDir();
  const output = path.join(dir, 'nan.onnx');
  await assert.rejects(
    finetuneModel({ model: VIT, data: { path: TRAIN, limit: 640 }, output, maxSteps: 5, batchSize: 64, lr: 1e30, warmupSteps: 0, clipNorm: 0 }, {}),
    (err: unknown) => {
      assert.ok(err instanceof OtfuseError);
      assert.equal(err.code, 'NUMERIC');
      assert.match(err.message, /loss became NaN at step \d+/);
      assert.match(err.message, /last good parameters \(after step \d+\) were written/);
      return true;
    },
  );
  const kept = loadModel(output);
  for (const name of trainableParameters(kept)) assert.ok(kept.getInitializer(name).data.every(Number.isFinite), name);
  const r = await evaluateModel(kept, openDataset(TEST), { limit: 200 });
  assert.ok(Number.isFinite(r.loss));
});

test('training graph: float initializers that only feed shapes are not parameters', async () => {
  const model = buildTiny(
    {
      inputs: [{ name: 'x', dims: [4, 3] }],
      nodes: [
        { op: 'MatMul', inputs: ['x', 'w'], outputs: ['t'] },
        { op: 'Shape', inputs: ['like'], outputs: ['s'] },
        { op: 'Reshape', inputs: ['t', 's'], outputs: ['logits'] },
      ],
      output: 'logits',
    },
    DT.FLOAT,
  );
  model.graph.initializer!.push(
    { name: 'w', dataType: DT.FLOAT, dims: [3, 2], rawData: new Uint8Array(Float32Array.from({ length: 6 }, () => rand() - 0.5).buffer) },
    { name: 'like', dataType: DT.FLOAT, dims: [4, 2], rawData: new Uint8Array(new Float32Array(8).buffer) },
  );
  const reloaded = loadModelFromProto(model);
  assert.deepEqual(trainableParameters(reloaded), ['w', 'like']);
  const tg = await buildTrainingGraph(reloaded, {});
  assert.deepEqual(
    tg.layout.slots.map((s) => s.name),
    ['w'],
  );
  // The step graph still runs: 'like' stays an initializer of the step graph.
  const s = await ort.InferenceSession.create(tg.model.toBytes(), { logSeverityLevel: 3 });
  const out = await s.run({
    x: new ort.Tensor('float32', new Float32Array(12).fill(0.5), [4, 3]),
    labels: new ort.Tensor('int64', BigInt64Array.from([0n, 1n, 0n, 1n]), [4]),
    ...paramFeeds(tg.layout, flattenParams(reloaded, tg.layout)),
  });
  assert.ok(Number.isFinite((out.loss.data as Float32Array)[0]));
  await s.release();
});

test('finetune on data of the wrong shape names the data file and both shapes, before building anything', async () => {
  const dir = tmpDir();
  // One float array 'x' of 20×20 images for a model that takes 1×28×28: bound by name, refused on its shape.
  const data = path.join(dir, 'small-images.npz');
  const n = 8;
  fs.writeFileSync(
    data,
    encodeNpz({
      x: { data: new Float32Array(n * 400), shape: [n, 1, 20, 20] },
      y: { data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 10)), shape: [n] },
    }),
  );
  await assert.rejects(finetuneModel({ model: VIT, data, output: path.join(dir, 'out', 'ft.onnx'), epochs: 1, seed: 1 }, {}), (err: unknown) => {
    assert.ok(err instanceof OtfuseError, String(err));
    assert.equal(err.code, 'BAD_DATA');
    assert.equal(err.file, data);
    assert.match(err.message, /samples of shape \[1,20,20\].*expects/);
    return true;
  });
  assert.deepEqual(fs.readdirSync(dir), ['small-images.npz']);
});
