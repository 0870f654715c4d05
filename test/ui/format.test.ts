// What the editor derives from run.json (issue 27 items 1, 3, 9): each row's role (typed when run.json has it,
// else from today's labels), the fused accuracy the pickers show (not the last row), calibration-measured runs,
// unique run names, and provider errors in words.
import test from 'node:test';
import assert from 'node:assert/strict';
import { fusedAccuracy, measuredOn, onCalibration, providerReason, roleOf, rowData, uniqueNames } from '../../extension/format';
import type { ModelMetrics, RunRecord } from '../../worker/types';

const legacy = (rows: object[]) => rows as unknown as ModelMetrics[];

const record = (over: Partial<RunRecord> = {}): RunRecord => ({
  id: 'x',
  name: 'vit48_s11-into-vit48_s10',
  status: 'done',
  createdAt: '2026-12-06T21:00:00.000Z',
  recipe: {},
  models: ['/w/a.onnx', '/w/b.onnx'],
  anchor: '/w/a.onnx',
  fusedModel: 'fused.onnx',
  versions: {},
  timings: {},
  // Rows as an older run.json wrote them (no role, no data): what the fallbacks are for.
  metrics: legacy([
    { label: 'a.onnx (anchor)', file: '/w/a.onnx', accuracy: 0.85 },
    { label: 'b.onnx', file: '/w/b.onnx', accuracy: 0.86 },
    { label: 'vanilla', accuracy: 0.2 },
    { label: 'ot', accuracy: 0.83 },
    { label: 'ot+finetune', accuracy: 0.87 },
    { label: 'anchor+finetune', accuracy: 0.86 },
    { label: 'ensemble (mean logits)', accuracy: 0.88 },
  ]),
  layers: [],
  data: '/w/calib200.npz',
  evalData: '/w/test.npz',
  ...over,
});

test('roles from the labels of an older run.json; a typed role wins', () => {
  const r = record();
  assert.deepEqual(
    r.metrics.map((m) => roleOf(m, r)),
    ['anchor', 'parent', 'vanilla', 'fused', 'finetuned', 'baseline', 'ensemble'],
  );
  // A new run.json says it: the label no longer matters.
  const typed: ModelMetrics = { label: 'OT (EMD)', accuracy: 0.8, role: 'fused', data: { path: '/w/test.npz', sha256: 'ab', n: 2000 } };
  assert.equal(roleOf(typed, r), 'fused');
  assert.deepEqual(rowData(typed, r), { name: 'test.npz', n: 2000, sha256: 'ab' });
  assert.deepEqual(rowData(r.metrics[0], r), { name: 'test.npz' });
});

test('the pickers show the fused accuracy, not the last row (the ensemble)', () => {
  const r = record();
  assert.equal(r.metrics.at(-1)!.accuracy, 0.88);
  assert.equal(fusedAccuracy(r), 0.83);
  assert.equal(fusedAccuracy(record({ metrics: [] })), undefined);
});

test('rows measured on the calibration data are said so, also after "Skip evaluation" + finetune', () => {
  assert.equal(onCalibration(record()), false);
  assert.equal(measuredOn(record()), 'on test.npz');
  assert.equal(onCalibration(record({ evalIsCalibration: true })), true);
  // Fused without evaluation (no evalData), then finetuned and measured on the calibration data.
  const skipped = record({ evalData: undefined, metrics: legacy([{ label: 'ot+finetune', accuracy: 0.9 }]) });
  assert.equal(onCalibration(skipped), true);
  assert.equal(measuredOn(skipped), 'on calib200.npz — calibration data, not held out');
  assert.equal(onCalibration(record({ evalData: undefined, metrics: [] })), false);
});

test('run names shown are unique: the date and time, else the folder', () => {
  const a = { dir: '/runs/20261206-210000-x', record: record() };
  const b = { dir: '/runs/20261206-211500-x', record: record({ createdAt: '2026-12-06T21:15:00.000Z' }) };
  const c = { dir: '/runs/20261206-211500-y', record: record({ createdAt: '2026-12-06T21:15:20.000Z' }) };
  const d = { dir: '/runs/other', record: record({ name: 'other' }) };
  const names = uniqueNames([a, b, c, d]);
  assert.equal(names.get(a.dir), 'vit48_s11-into-vit48_s10 (2026-12-06 21:00)');
  assert.equal(names.get(b.dir), 'vit48_s11-into-vit48_s10 (20261206-211500-x)');
  assert.equal(names.get(c.dir), 'vit48_s11-into-vit48_s10 (20261206-211500-y)');
  assert.equal(names.get(d.dir), 'other');
  assert.equal(new Set(names.values()).size, 4);
});

test('a provider failure speaks of the provider, not of a C++ source path', () => {
  const raw = 'webgpu: /onnxruntime/core/providers/webgpu/webgpu_context.cc:140 void Init() status.IsOK() was false. Failed to get a WebGPU adapter';
  const said = providerReason(raw, 'webgpu');
  assert.equal(said, 'the webgpu execution provider found no usable GPU adapter on this machine (details in the otfuse log)');
  assert.ok(!/\.cc|onnxruntime/.test(said));
  assert.equal(providerReason('CUDA is not available in this build', 'cuda'), 'CUDA is not available in this build');
});
