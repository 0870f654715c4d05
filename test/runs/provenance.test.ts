// Provenance (#27): no training on the data a run is measured on (same path or same content: exit 2 naming both),
// every metric row says what it measured (role) and on which data (path, sha256, N), the finetune record says
// what it trained on, and a second finetune appends to the history.
import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EXAMPLES, runCli, tempDir, VIT } from '../helpers';
import { fuseModels } from '../../worker/jobs/run';
import { finetuneRun } from '../../worker/runs/actions';
import { readRun } from '../../worker/runs/store';
import { OtfuseError } from '../../worker/errors';
import { engine } from '../../worker/api';
import { readLineage } from '../../worker/runs/lineage';
import { loadModel } from '../../worker/onnx/model';

const S10 = path.join(VIT, 'vit48_s10.onnx');
const S11 = path.join(VIT, 'vit48_s11.onnx');
const CALIB = path.join(VIT, 'calib200.npz');
const EVAL = path.join(EXAMPLES, 'data', 'fmnist-test-2k.json');
const TRAIN = path.join(EXAMPLES, 'data', 'fmnist-train-5k.json');
const EVAL_IMAGES = path.join(EXAMPLES, 'data', 'fmnist-test-2k-images-idx3-ubyte.gz');
const EVAL_LABELS = path.join(EXAMPLES, 'data', 'fmnist-test-2k-labels-idx1-ubyte.gz');

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
/** The content id of a JSON spec: its images' and labels' sha256, joined (computed here from the bytes). */
const specSha = (images: string, labels: string) =>
  crypto
    .createHash('sha256')
    .update(`${sha(images)}\n${sha(labels)}`)
    .digest('hex');

const fuseArgs = (runs: string) => [S11, S10, '--preset', 'weights', '--eval-limit', '100', '--runs-dir', runs, '--provider', 'cpu'];

test('fuse --finetune refuses training on the evaluation data: same path, a byte-identical copy, the calibration data evaluated on', () => {
  const runs = tempDir();
  const copy = path.join(tempDir(), 'copy-of-calib.npz');
  fs.copyFileSync(CALIB, copy);
  const cases: { args: string[]; names: string[] }[] = [
    { args: ['--data', CALIB, '--eval-data', EVAL, '--finetune', '--train-data', EVAL], names: [EVAL, EVAL] },
    { args: ['--data', EVAL, '--eval-data', CALIB, '--finetune', '--train-data', copy], names: [copy, CALIB] },
    // No --eval-data: the calibration data is what the run is measured on.
    { args: ['--data', CALIB, '--finetune', '--train-data', copy], names: [copy, CALIB] },
    // --no-eval: the finetune is still evaluated (and its checkpoint chosen) on the calibration data.
    { args: ['--data', CALIB, '--no-eval', '--finetune', '--train-data', CALIB], names: [CALIB, CALIB] },
  ];
  for (const c of cases) {
    const r = runCli(['fuse', ...fuseArgs(runs), ...c.args, '--max-steps', '2']);
    assert.equal(r.code, 2, `${c.args.join(' ')}\n${r.stderr}`);
    assert.match(r.stderr, /refusing to train on the/);
    for (const n of c.names) assert.ok(r.stderr.includes(n), `names ${n}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  assert.deepEqual(fs.readdirSync(runs), [], 'refused before any work: no run folder');
  // A JSON spec that points at copies of the evaluation files is the same content too.
  const dir = tempDir();
  fs.copyFileSync(EVAL_IMAGES, path.join(dir, 'img.gz'));
  fs.copyFileSync(EVAL_LABELS, path.join(dir, 'lab.gz'));
  fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify({ ...JSON.parse(fs.readFileSync(EVAL, 'utf8')), path: 'img.gz', labels: 'lab.gz' }));
  const r = runCli(['fuse', ...fuseArgs(runs), '--data', CALIB, '--eval-data', EVAL, '--finetune', '--train-data', path.join(dir, 'spec.json')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /same content \(sha256/);
});

test('finetune refuses --eval that is its training data (a copy too); the engine API does the same', async () => {
  const out = path.join(tempDir(), 'out.onnx');
  const copy = path.join(tempDir(), 'copy.npz');
  fs.copyFileSync(CALIB, copy);
  const r = runCli(['finetune', S10, '--data', CALIB, '--eval', copy, '-o', out, '--max-steps', '1', '--provider', 'cpu']);
  assert.equal(r.code, 2, r.stderr);
  assert.ok(r.stderr.includes(CALIB) && r.stderr.includes(copy), r.stderr);
  assert.equal(fs.existsSync(out), false);
  await assert.rejects(
    engine.finetune({ model: S10, data: CALIB, evalData: CALIB, output: out, maxSteps: 1 }),
    (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_USAGE' && e.message.includes(CALIB),
  );
});

test('a fuse --finetune run records each row with its role and data, and the finetune with its training data', () => {
  const runs = tempDir();
  const r = runCli(['fuse', ...fuseArgs(runs), '--data', CALIB, '--eval-data', EVAL, '--finetune', '--train-data', TRAIN, '--max-steps', '3', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const { runDir, record } = JSON.parse(r.stdout);
  const onDisk = readRun(runDir).record!;
  assert.deepEqual(onDisk.metrics, record.metrics);
  assert.deepEqual(
    record.metrics.map((m: { role: string; model?: number }) => `${m.role}${m.model ?? ''}`),
    ['anchor0', 'parent1', 'vanilla', 'fused', 'finetuned'],
  );
  const evalSha = specSha(EVAL_IMAGES, EVAL_LABELS);
  for (const m of record.metrics) {
    assert.equal(path.resolve(runDir, m.data.path), EVAL, `${m.label}: ${m.data.path}`);
    assert.ok(!path.isAbsolute(m.data.path), 'relative to the run folder');
    assert.equal(m.data.sha256, evalSha);
    assert.equal(m.data.n, 100);
  }
  const ft = onDisk.finetune!;
  assert.equal(path.resolve(runDir, ft.trainData!.path), TRAIN);
  assert.equal(ft.trainData!.n, 5000);
  assert.equal(
    ft.trainData!.sha256,
    specSha(path.join(EXAMPLES, 'data', 'fmnist-train-5k-images-idx3-ubyte.gz'), path.join(EXAMPLES, 'data', 'fmnist-train-5k-labels-idx1-ubyte.gz')),
  );
  assert.equal(ft.steps, 3);
  assert.equal(ft.lr, 2e-4);
  assert.equal(ft.seed, 0);
  assert.ok(ft.epochs > 0);
  assert.deepEqual(onDisk.finetunes, [ft]);
  assert.equal(onDisk.schemaVersion, 2);
  // fused.onnx says the same in its metadata: each row's role and data by name, sha256 and N (no local path).
  const lineage = readLineage(loadModel(path.join(runDir, 'fused.onnx')).summary().metadata)!;
  assert.deepEqual(
    lineage.metricRows!.map((m) => [m.role, m.label, m.accuracy, m.data]),
    record.metrics
      .filter((m: { role: string }) => m.role !== 'finetuned')
      .map((m: { role: string; label: string; accuracy: number }) => [m.role, m.label, m.accuracy, { name: 'fmnist-test-2k.json', sha256: evalSha, n: 100 }]),
  );
});

test('finetuneRun: a second finetune appends to the history; training on the run evaluation data is refused', async () => {
  const runsDir = tempDir();
  const { runDir } = await fuseModels({ models: [S11, S10], data: CALIB, evalData: EVAL, evalLimit: 100, runsDir, recipe: { preset: 'weights' } }, {});
  await assert.rejects(
    finetuneRun({ runDir, data: EVAL, maxSteps: 1 }, {}),
    (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_USAGE' && /refusing to train on the/.test(e.message),
  );
  const first = await finetuneRun({ runDir, data: TRAIN, maxSteps: 2, evalLimit: 100 }, {});
  const second = await finetuneRun({ runDir, data: CALIB, maxSteps: 1, lr: 1e-4, seed: 5, evalLimit: 100 }, {});
  const r = readRun(runDir).record!;
  assert.equal(r.finetunes!.length, 2, 'appended, not overwritten');
  assert.equal(r.finetunes![0].steps, 2);
  assert.equal(path.resolve(runDir, r.finetunes![0].trainData!.path), TRAIN);
  assert.equal(r.finetunes![1].steps, 1);
  assert.equal(r.finetunes![1].lr, 1e-4);
  assert.equal(r.finetunes![1].seed, 5);
  assert.equal(r.finetunes![1].trainData!.sha256, sha(CALIB));
  assert.equal(r.finetunes![1].trainData!.n, 200);
  assert.deepEqual(r.finetune, r.finetunes![1]);
  assert.equal(first.record.metrics.filter((m) => m.role === 'finetuned').length, 1);
  assert.equal(second.record.metrics.filter((m) => m.role === 'finetuned').length, 1, 'the finetuned row is the current finetuned.onnx');
  assert.equal(r.metrics.find((m) => m.role === 'finetuned')!.accuracy, r.finetunes![1].rows![0].accuracy);
});

test('Quick Finetune on a run fused without evaluation says its numbers are calibration numbers', async () => {
  const runsDir = tempDir();
  const { runDir } = await fuseModels({ models: [S11, S10], data: CALIB, skipEval: true, runsDir, recipe: { preset: 'weights' } }, {});
  assert.equal(readRun(runDir).record!.metrics.length, 0);
  await assert.rejects(finetuneRun({ runDir, data: CALIB, maxSteps: 1 }, {}), /calibration data the finetune is evaluated on/);
  const ft = await finetuneRun({ runDir, data: TRAIN, maxSteps: 2 }, {});
  assert.equal(ft.record.evalIsCalibration, true);
  const row = ft.record.metrics.find((m) => m.role === 'finetuned')!;
  assert.equal(path.resolve(runDir, row.data!.path), CALIB);
  assert.equal(row.data!.sha256, sha(CALIB));
  // The extension passes the run's calibration data as the evaluation data explicitly: labelled the same way.
  const other = await fuseModels({ models: [S11, S10], data: CALIB, skipEval: true, runsDir, recipe: { preset: 'weights' } }, {});
  const explicit = await finetuneRun({ runDir: other.runDir, data: TRAIN, evalData: CALIB, maxSteps: 2 }, {});
  assert.equal(explicit.record.evalIsCalibration, true);
});
