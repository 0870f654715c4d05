// Distillation finetuning: the mixed loss (1−α)·CE + α·T²·KL(p_t ‖ softmax(z/T)) and its gradient against a JS
// reference and finite differences; a model distilled into itself (its own single teacher, distillation loss
// only, no weight decay) keeps its logits, while the same steps on labels move them; the CLI's --teacher flags.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { A, DT } from '../../worker/train/builder';
import { buildGradientGraph } from '../../worker/train/graphs';
import { gradientCheck } from '../../worker/train/gradcheck';
import { finetuneModel } from '../../worker/train/finetune';
import { addSoftened } from '../../worker/train/teachers';
import { buildTiny, rand } from './helpers';
import { EXAMPLES, runCli, tempDir } from '../helpers';

const TRAIN = path.join(process.cwd(), 'examples/data/fmnist-train-5k.json');
const TEST = path.join(process.cwd(), 'examples/data/fmnist-test-2k.json');
const S10 = path.join(EXAMPLES, 'vit48_s10.onnx');
const S11 = path.join(EXAMPLES, 'vit48_s11.onnx');

/** Tiny classifier: logits = x·Wᵀ + b, 5 samples × 4 features → 3 classes, W and b graph inputs. */
function tiny(dataType: number) {
  return buildTiny(
    {
      inputs: [
        { name: 'x', dims: [5, 4] },
        { name: 'w', dims: [3, 4] },
        { name: 'b', dims: [3] },
      ],
      nodes: [{ op: 'Gemm', inputs: ['x', 'w', 'b'], outputs: ['logits'], attrs: { transB: A.i(1) } }],
      output: 'logits',
    },
    dataType,
  );
}

function softmaxRows(z: number[][], T: number): number[][] {
  return z.map((row) => {
    const m = Math.max(...row.map((v) => v / T));
    const e = row.map((v) => Math.exp(v / T - m));
    const s = e.reduce((a, c) => a + c, 0);
    return e.map((v) => v / s);
  });
}

test('distillation loss and its gradient: JS reference and central differences', async () => {
  const T = 3;
  const alpha = 0.7;
  const x = Array.from({ length: 20 }, () => rand() * 2 - 1);
  const w = Array.from({ length: 12 }, () => rand() * 2 - 1);
  const b = Array.from({ length: 3 }, () => rand() - 0.5);
  const labels = [0, 2, 1, 1, 0];
  // Teacher probabilities: the mean of two softened random teachers (one row has an exact 0 entry).
  const p = new Float32Array(15);
  addSoftened(
    p,
    Float32Array.from({ length: 15 }, () => rand() * 6 - 3),
    3,
    T,
    0.5,
  );
  addSoftened(
    p,
    Float32Array.from({ length: 15 }, () => rand() * 6 - 3),
    3,
    T,
    0.5,
  );
  const rows = Array.from({ length: 5 }, (_, i) => Array.from(p.subarray(i * 3, i * 3 + 3)));
  rows[4] = [0, 0.25, 0.75];
  rows.forEach((r, i) => r.forEach((v, c) => (p[i * 3 + c] = v)));
  for (const r of rows) assert.ok(Math.abs(r.reduce((a, c) => a + c, 0) - 1) < 1e-6);

  // JS reference of the loss in float64.
  const z = Array.from({ length: 5 }, (_, i) => Array.from({ length: 3 }, (_, c) => b[c] + [0, 1, 2, 3].reduce((s, k) => s + x[i * 4 + k] * w[c * 4 + k], 0)));
  const q1 = softmaxRows(z, 1);
  const qT = softmaxRows(z, T);
  let ce = 0;
  let kl = 0;
  for (let i = 0; i < 5; i++) {
    ce -= Math.log(q1[i][labels[i]]);
    for (let c = 0; c < 3; c++) if (rows[i][c] > 0) kl += rows[i][c] * (Math.log(rows[i][c]) - Math.log(qT[i][c]));
  }
  const expected = ((1 - alpha) * ce + alpha * T * T * kl) / 5;

  const model = tiny(DT.DOUBLE);
  const feeds: Record<string, ort.Tensor> = {
    x: new ort.Tensor('float64', Float64Array.from(x), [5, 4]),
    w: new ort.Tensor('float64', Float64Array.from(w), [3, 4]),
    b: new ort.Tensor('float64', Float64Array.from(b), [3]),
    labels: new ort.Tensor('int64', BigInt64Array.from(labels.map(BigInt)), [5]),
    teacher_probs: new ort.Tensor('float64', Float64Array.from(p), [5, 3]),
  };
  let dataType = 'float64';
  let entries;
  let loss: number;
  try {
    const gg = await buildGradientGraph(model, { wrt: ['w', 'b'], distill: { temperature: T, alpha } });
    const s = await ort.InferenceSession.create(gg.model.toBytes(), { logSeverityLevel: 3 });
    loss = Number((await s.run(feeds)).loss.data[0]);
    await s.release();
    entries = await gradientCheck(model, { feeds, wrt: ['w', 'b'], distill: { temperature: T, alpha }, eps: 1e-6, samplesPerTensor: 8 });
  } catch (err) {
    // ONNX Runtime's CPU OneHot has no float64 kernel on some builds: fall back to float32.
    if (!/implementation|NOT_IMPLEMENTED|Type/i.test(String(err))) throw err;
    dataType = 'float32';
    const m32 = tiny(DT.FLOAT);
    const f32: Record<string, ort.Tensor> = { ...feeds };
    for (const k of ['x', 'w', 'b', 'teacher_probs']) f32[k] = new ort.Tensor('float32', Float32Array.from(feeds[k].data as Float64Array), feeds[k].dims);
    const gg = await buildGradientGraph(m32, { wrt: ['w', 'b'], distill: { temperature: T, alpha } });
    const s = await ort.InferenceSession.create(gg.model.toBytes(), { logSeverityLevel: 3 });
    loss = Number((await s.run(f32)).loss.data[0]);
    await s.release();
    entries = await gradientCheck(m32, { feeds: f32, wrt: ['w', 'b'], distill: { temperature: T, alpha }, eps: 1e-2, samplesPerTensor: 8 });
  }
  const tol = dataType === 'float64' ? 1e-6 : 2e-2;
  assert.ok(Math.abs(loss - expected) < (dataType === 'float64' ? 1e-10 : 1e-5) * Math.max(1, expected), `loss ${loss} vs reference ${expected} (${dataType})`);
  for (const e of entries) {
    assert.ok(e.scale > 0, `${e.name}: zero gradient`);
    assert.ok(e.maxRelErr <= tol, `${e.name}: KD gradient off by ${e.maxRelErr} (${dataType}); ${JSON.stringify(e.points)}`);
  }
});

async function logitsOf(file: string, n = 512): Promise<Float32Array> {
  const out = new Float32Array(n * 10);
  await evaluateModel(loadModel(file), openDataset(TEST), { limit: n, batchSize: 256, onLogits: (l, start) => out.set(l, start * 10) });
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('a model distilled into itself (own single teacher, distillation loss only, no weight decay) keeps its logits', async () => {
  const dir = tempDir();
  const before = await logitsOf(S10);
  const common = { model: S10, data: TRAIN, maxSteps: 30, batchSize: 64, lr: 2e-4, weightDecay: 0, threads: 1 };
  const self = await finetuneModel({ ...common, output: path.join(dir, 'self.onnx'), teachers: [S10], kdTemp: 2, kdAlpha: 1 }, {});
  assert.deepEqual(self.distill, { teachers: [S10], temperature: 2, alpha: 1 });
  // The KL to itself is 0 up to float rounding at every logged step.
  for (const h of self.history) assert.ok(Math.abs(h.loss) < 1e-6, `self-distillation loss ${h.loss} at step ${h.step}`);
  const selfDiff = maxAbsDiff(before, await logitsOf(path.join(dir, 'self.onnx')));
  // The same steps on the labels (a wrong KD implementation would behave like this) move the logits a lot.
  const ce = await finetuneModel({ ...common, output: path.join(dir, 'ce.onnx') }, {});
  assert.equal(ce.distill, undefined);
  const ceDiff = maxAbsDiff(before, await logitsOf(path.join(dir, 'ce.onnx')));
  assert.ok(selfDiff < 1e-4, `self-distilled logits moved by ${selfDiff}`);
  assert.ok(ceDiff > 0.3, `label finetune moved logits by ${ceDiff}, self-distillation by ${selfDiff}`);
});

test('distilling s10 from a different teacher moves it towards the teacher', async () => {
  const dir = tempDir();
  const teacher = await logitsOf(S11);
  const before = await logitsOf(S10);
  await finetuneModel(
    {
      model: S10,
      data: TRAIN,
      output: path.join(dir, 'kd.onnx'),
      maxSteps: 120,
      batchSize: 64,
      lr: 5e-4,
      weightDecay: 0,
      teachers: [S11],
      kdTemp: 1,
      kdAlpha: 1,
      threads: 1,
    },
    {},
  );
  const after = await logitsOf(path.join(dir, 'kd.onnx'));
  // Mean KL(teacher ‖ student) on held-out test images: distillation must shrink it.
  const kl = (student: Float32Array) => {
    let sum = 0;
    const n = student.length / 10;
    for (let r = 0; r < n; r++) {
      const p = new Float32Array(10);
      const q = new Float32Array(10);
      addSoftened(p, teacher.subarray(r * 10, r * 10 + 10), 10, 1, 1);
      addSoftened(q, student.subarray(r * 10, r * 10 + 10), 10, 1, 1);
      for (let c = 0; c < 10; c++) if (p[c] > 0) sum += p[c] * (Math.log(p[c]) - Math.log(Math.max(q[c], 1e-30)));
    }
    return sum / n;
  };
  assert.ok(kl(after) < 0.9 * kl(before), `KL(teacher ‖ student) ${kl(before)} → ${kl(after)}`);
});

test('CLI: finetune --teacher (repeatable) distills; --kd-alpha without a teacher or out of range is a usage error', () => {
  const dir = tempDir();
  const out = path.join(dir, 'kd.onnx');
  const r = runCli([
    'finetune',
    S10,
    '--data',
    TRAIN,
    '-o',
    out,
    '--max-steps',
    '5',
    '--teacher',
    S10,
    '--teacher',
    S11,
    '--kd-temp',
    '3',
    '--kd-alpha',
    '0.25',
    '--json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.deepEqual(result.distill, { teachers: [S10, S11], temperature: 3, alpha: 0.25 });
  assert.equal(result.steps, 5);
  const bad = runCli(['finetune', S10, '--data', TRAIN, '-o', out, '--max-steps', '5', '--kd-alpha', '0.5']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--teacher/);
  const range = runCli(['finetune', S10, '--data', TRAIN, '-o', out, '--max-steps', '5', '--teacher', S11, '--kd-alpha', '1.5']);
  assert.equal(range.code, 2, range.stderr);
  assert.match(range.stderr, /kd-alpha/);
  const het = runCli([
    'finetune',
    S10,
    '--data',
    TRAIN,
    '-o',
    out,
    '--max-steps',
    '5',
    '--teacher',
    path.join(process.cwd(), 'test/fixtures/bert/bertD_s20.onnx'),
  ]);
  assert.equal(het.code, 1, het.stderr);
});

// Token data (issue 29: a causal LM distilled from the mean of its teachers' next-token distributions): the KL term
// covers the scored positions only (IGNORE_LABEL rows add nothing to loss or gradient), averaged like the CE.
test('token distillation (masked labels): loss against a JS reference, gradient against central differences', async () => {
  const T = 2;
  const alpha = 0.6;
  const x = Array.from({ length: 20 }, () => rand() * 2 - 1);
  const w = Array.from({ length: 12 }, () => rand() * 2 - 1);
  const b = Array.from({ length: 3 }, () => rand() - 0.5);
  const labels = [0, -100, 1, 2, -100];
  const p = new Float32Array(15);
  addSoftened(
    p,
    Float32Array.from({ length: 15 }, () => rand() * 6 - 3),
    3,
    T,
    1,
  );
  const rows = Array.from({ length: 5 }, (_, i) => Array.from(p.subarray(i * 3, i * 3 + 3)));
  const z = Array.from({ length: 5 }, (_, i) => Array.from({ length: 3 }, (_, c) => b[c] + [0, 1, 2, 3].reduce((s, k) => s + x[i * 4 + k] * w[c * 4 + k], 0)));
  const q1 = softmaxRows(z, 1);
  const qT = softmaxRows(z, T);
  let ce = 0;
  let kl = 0;
  let n = 0;
  for (let i = 0; i < 5; i++) {
    if (labels[i] === -100) continue;
    n++;
    ce -= Math.log(q1[i][labels[i]]);
    for (let c = 0; c < 3; c++) kl += rows[i][c] * (Math.log(rows[i][c]) - Math.log(qT[i][c]));
  }
  const expected = ((1 - alpha) * ce + alpha * T * T * kl) / n;
  const model = tiny(DT.FLOAT);
  const feeds: Record<string, ort.Tensor> = {
    x: new ort.Tensor('float32', Float32Array.from(x), [5, 4]),
    w: new ort.Tensor('float32', Float32Array.from(w), [3, 4]),
    b: new ort.Tensor('float32', Float32Array.from(b), [3]),
    labels: new ort.Tensor('int64', BigInt64Array.from(labels.map(BigInt)), [5]),
    teacher_probs: new ort.Tensor('float32', p, [5, 3]),
  };
  const options = { wrt: ['w', 'b'], distill: { temperature: T, alpha }, maskedLabels: true };
  const gg = await buildGradientGraph(model, options);
  const s = await ort.InferenceSession.create(gg.model.toBytes(), { logSeverityLevel: 3 });
  const out = await s.run(feeds);
  await s.release();
  const loss = Number(out.loss.data[0]);
  assert.ok(Math.abs(loss - expected) < 1e-5 * Math.max(1, expected), `loss ${loss} vs reference ${expected}`);
  // The ignored rows' teacher probabilities do not matter: changing them leaves loss and gradient unchanged.
  const moved = Float32Array.from(p);
  for (const i of [1, 4]) moved.set([1, 0, 0], i * 3);
  const s2 = await ort.InferenceSession.create(gg.model.toBytes(), { logSeverityLevel: 3 });
  const out2 = await s2.run({ ...feeds, teacher_probs: new ort.Tensor('float32', moved, [5, 3]) });
  await s2.release();
  assert.equal(Number(out2.loss.data[0]), loss);
  assert.deepEqual(Array.from(out2['grad:w'].data as Float32Array), Array.from(out['grad:w'].data as Float32Array));
  const entries = await gradientCheck(model, { feeds, ...options, eps: 1e-2, samplesPerTensor: 8 });
  for (const e of entries) {
    assert.ok(e.scale > 0, `${e.name}: zero gradient`);
    assert.ok(e.maxRelErr <= 2e-2, `${e.name}: token KD gradient off by ${e.maxRelErr}; ${JSON.stringify(e.points)}`);
  }
});
