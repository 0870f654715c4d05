// `otfuse fuse` and `otfuse inspect --alignment` through the built CLI: outputs, run folder, errors.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { EXAMPLES, VIT, runCli, tempDir } from '../helpers';

const anchor = path.join(EXAMPLES, 'vit48_s11.onnx');
const other = path.join(EXAMPLES, 'vit48_s10.onnx');
const calib = path.join(EXAMPLES, 'calib200.npz');

test('fuse writes -o atomically, a complete run folder, and --json matches run.json', () => {
  const dir = tempDir();
  const out = path.join(dir, 'fused.onnx');
  const r = runCli(['fuse', anchor, other, '--data', calib, '--solver', 'emd', '-o', out, '--runs-dir', path.join(dir, 'runs'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.ok(fs.existsSync(out));
  const runDir = result.runDir as string;
  assert.deepEqual(
    fs
      .readdirSync(runDir)
      .sort()
      .filter((f) => !f.startsWith('.')),
    ['fused.onnx', 'maps.safetensors', 'run.json'],
  );
  const record = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  assert.deepEqual(record.metrics, result.record.metrics);
  assert.equal(record.recipe.solver, 'emd');
  const labels = record.metrics.map((m: { label: string }) => m.label);
  assert.equal(labels.length, 4, labels.join());
  const ot = record.metrics.find((m: { label: string }) => m.label === 'ot').accuracy;
  const vanilla = record.metrics.find((m: { label: string }) => m.label === 'vanilla').accuracy;
  assert.ok(ot > vanilla + 0.1, `ot ${ot} vs vanilla ${vanilla}`);
  // The -o copy is the same model as the run's fused.onnx, and it evaluates to the recorded OT accuracy.
  assert.ok(fs.readFileSync(out).equals(fs.readFileSync(path.join(runDir, 'fused.onnx'))));
  const ev = JSON.parse(runCli(['eval', out, '--data', calib, '--json']).stdout);
  assert.ok(Math.abs(ev.accuracy - ot) < 1e-9, `${ev.accuracy} vs ${ot}`);
});

test('fuse of mismatched models fails with exit 1 and leaves no run folder or output', () => {
  const dir = tempDir();
  const bert = path.join(process.cwd(), 'test', 'fixtures', 'bert', 'bertD_s20.onnx');
  const out = path.join(dir, 'fused.onnx');
  const r = runCli(['fuse', anchor, bert, '--data', calib, '-o', out, '--runs-dir', path.join(dir, 'runs')]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /otfuse: error: /);
  assert.ok(!fs.existsSync(out));
  const runs = path.join(dir, 'runs');
  assert.ok(!fs.existsSync(runs) || fs.readdirSync(runs).length === 0, 'no run folder');
});

test('inspect --alignment prints the transport-map structure derived from the graph', () => {
  const r = runCli(['inspect', path.join(VIT, 'vit72_s12.onnx'), '--alignment', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const a = JSON.parse(r.stdout).alignment;
  assert.equal(a.hiddenSize, 72);
  assert.equal(a.layers, 3);
  assert.equal(a.heads, 4);
  assert.equal(a.headDim, 18);
  assert.ok(a.groups.length >= 20, String(a.groups.length));
});

test('a bad recipe file is a usage error naming the file and field', () => {
  const dir = tempDir();
  const recipe = path.join(dir, 'bad.otfuse.json');
  fs.writeFileSync(recipe, JSON.stringify({ solver: 'emd', reg: 'high' }));
  const r = runCli(['fuse', anchor, other, '--data', calib, '--recipe', recipe, '--runs-dir', path.join(dir, 'runs')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`${recipe}.*'reg'`));
  assert.ok(!fs.existsSync(path.join(dir, 'runs')));
});

test('run.json records the data as absolute paths and finetune --eval takes a dataset', () => {
  const dir = tempDir();
  const bert = path.join(process.cwd(), 'test', 'fixtures', 'bert');
  const r = runCli(
    ['fuse', 'bertD_s21.onnx', 'bertD_s20.onnx', '--data', 'calib.npz', '--eval-data', 'test.npz', '--runs-dir', path.join(dir, 'runs'), '--json'],
    { cwd: bert },
  );
  assert.equal(r.code, 0, r.stderr);
  const record = JSON.parse(r.stdout).record;
  assert.equal(record.data, path.join(bert, 'calib.npz'));
  assert.equal(record.evalData, path.join(bert, 'test.npz'));
  const ft = runCli([
    'finetune',
    path.join(dir, 'runs', path.basename(JSON.parse(r.stdout).runDir), 'fused.onnx'),
    '--data',
    path.join(bert, 'calib.npz'),
    '--eval',
    path.join(bert, 'test.npz'),
    '--max-steps',
    '3',
    '--batch-size',
    '64',
    '-o',
    path.join(dir, 'ft.onnx'),
    '--json',
  ]);
  assert.equal(ft.code, 0, ft.stderr);
  const result = JSON.parse(ft.stdout);
  assert.equal(result.steps, 3);
  assert.equal(result.evals.length, 1);
  assert.ok(fs.existsSync(path.join(dir, 'ft.onnx')));
});
