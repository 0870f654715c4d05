// `otfuse eval`/`inspect`/`providers` through the built CLI, and every bad input the foundation must name.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { encodeNpz } from '../../worker/data/npy';
import { EXAMPLES, FMNIST_TEST, VIT, hasFullFmnist, runCli, tempDir } from '../helpers';

const subset = path.join(EXAMPLES, 'data', 'fmnist-test-2k.json');
// Test accuracies of the fixture README (10k test set).
const README_ACC: Record<string, number> = { 'vit48_s10.onnx': 0.8495, 'vit48_s11.onnx': 0.8521 };

for (const [name, acc] of Object.entries(README_ACC)) {
  test(`eval ${name} on the bundled 2k subset is within 1.5 pt of the README`, () => {
    const r = runCli(['eval', path.join(EXAMPLES, name), '--data', subset, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.samples, 2000);
    assert.ok(Math.abs(out.accuracy - acc) <= 0.015, `accuracy ${out.accuracy} vs ${acc}`);
    assert.ok(out.loss > 0.2 && out.loss < 0.7, `loss ${out.loss}`);
  });
  test(
    `eval ${name} on the full 10k test set (Debian dataset) is within 0.5 pt`,
    { skip: hasFullFmnist ? false : 'dataset-fashion-mnist not installed' },
    () => {
      const r = runCli([
        'eval',
        path.join(EXAMPLES, name),
        '--data',
        FMNIST_TEST.path,
        '--labels',
        FMNIST_TEST.labels,
        '--mean',
        '0.286',
        '--std',
        '0.353',
        '--json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.samples, 10000);
      assert.ok(Math.abs(out.accuracy - acc) <= 0.005, `accuracy ${out.accuracy} vs ${acc}`);
    },
  );
}

test('eval of a .npz with x/y needs no flags and matches the IDX path on the same images', () => {
  const a = JSON.parse(runCli(['eval', path.join(VIT, 'vit48_s11.onnx'), '--data', path.join(VIT, 'calib200.npz'), '--json']).stdout);
  assert.equal(a.samples, 200);
  assert.ok(a.accuracy > 0.75 && a.accuracy < 0.95, String(a.accuracy));
});

test('inspect prints inputs, parameter count and the provider', () => {
  const r = runCli(['inspect', path.join(EXAMPLES, 'vit48_s10.onnx')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /parameters\s+88,666/);
  assert.match(r.stdout, /pixel_values: FLOAT \[batch, 1, 28, 28\]/);
  assert.match(r.stdout, /provider cpu/);
});

test('provider auto reports CPU and why CUDA and WebGPU were skipped; explicit cuda fails cleanly', () => {
  const r = runCli(['providers', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.used, 'cpu');
  assert.ok(
    report.reasons.some((x: string) => x.startsWith('cuda: not used')),
    JSON.stringify(report),
  );
  assert.ok(
    report.reasons.some((x: string) => x.startsWith('webgpu: not used')),
    JSON.stringify(report),
  );
  const cuda = runCli(['eval', path.join(EXAMPLES, 'vit48_s10.onnx'), '--data', path.join(VIT, 'calib200.npz'), '--provider', 'cuda']);
  assert.equal(cuda.code, 1);
  assert.match(cuda.stderr, /execution provider 'cuda' is not available/);
  assert.doesNotMatch(cuda.stderr, /at .*\.js:\d+/); // a message, not a stack trace
});

test('bad usage exits 2', () => {
  assert.equal(runCli(['eval']).code, 2);
  assert.equal(runCli(['eval', 'a.onnx', '--bogus', '1', '--data', 'x.npz']).code, 2);
  assert.equal(runCli(['frobnicate']).code, 2);
  assert.equal(runCli(['eval', 'a.onnx', '--data', 'x.npz', '--provider', 'tpu']).code, 2);
});

function expectFailure(args: string[], pattern: RegExp, dir: string): void {
  const before = fs.readdirSync(dir).sort();
  const r = runCli(args);
  assert.equal(r.code, 1, `exit code for ${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.deepEqual(fs.readdirSync(dir).sort(), before, 'no file left behind');
}

test('bad models: truncated and not-ONNX files are named in the error', () => {
  const dir = tempDir();
  const bytes = fs.readFileSync(path.join(VIT, 'vit48_s10.onnx'));
  const truncated = path.join(dir, 'truncated.onnx');
  fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  const text = path.join(dir, 'notes.onnx');
  fs.writeFileSync(text, 'these are my notes about the model, not a model\n'.repeat(20));
  const data = path.join(VIT, 'calib200.npz');
  expectFailure(['eval', truncated, '--data', data], new RegExp(`${truncated}.*(truncated|not a valid ONNX)`), dir);
  expectFailure(['eval', text, '--data', data], new RegExp(`${text}.*not a valid ONNX`), dir);
  expectFailure(['inspect', truncated], /not a valid ONNX|truncated/, dir);
});

test('bad data: wrong image size, labels out of range, NaN inputs', () => {
  const dir = tempDir();
  const model = path.join(EXAMPLES, 'vit48_s10.onnx');
  const n = 8;
  const big = path.join(dir, 'big32.npz');
  fs.writeFileSync(big, encodeNpz({ x: { data: new Float32Array(n * 32 * 32), shape: [n, 1, 32, 32] }, y: { data: new BigInt64Array(n), shape: [n] } }));
  const labels = path.join(dir, 'labels.npz');
  const y = new BigInt64Array(n);
  y[5] = 12n;
  fs.writeFileSync(labels, encodeNpz({ x: { data: new Float32Array(n * 784), shape: [n, 1, 28, 28] }, y: { data: y, shape: [n] } }));
  const nan = path.join(dir, 'nan.npz');
  const x = new Float32Array(n * 784);
  x[3 * 784 + 100] = NaN;
  fs.writeFileSync(nan, encodeNpz({ x: { data: x, shape: [n, 1, 28, 28] }, y: { data: new BigInt64Array(n), shape: [n] } }));
  expectFailure(['eval', model, '--data', big], new RegExp(`${big}.*\\[1,32,32\\].*expects \\[batch, 1, 28, 28\\]`), dir);
  expectFailure(['eval', model, '--data', labels], new RegExp(`${labels}.*label 12 of sample 5 is out of range`), dir);
  expectFailure(['eval', model, '--data', nan], new RegExp(`${nan}.*non-finite value \\(NaN\\) in sample 3`), dir);
  expectFailure(['eval', model, '--data', path.join(dir, 'missing.npz')], /missing\.npz.*not found/, dir);
  // IDX images without their preprocessing: the message says what to add.
  expectFailure(['eval', model, '--data', path.join(EXAMPLES, 'data', 'fmnist-test-2k-images-idx3-ubyte.gz')], /labels file/, dir);
});
