// The run folder's owner (worker/runs): unique ids claimed before the work (12 concurrent fusions into one
// runs folder all succeed), atomic patches, safe deletion, stale temp folders of killed runs, lineage in
// fused.onnx, calibration-only evaluation labelled, finetune/re-evaluate into a run.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { LOCK_FILE, OWNER_FILE } from '../../worker/io/outputs';
import { claimRun, cleanStaleTemps, commitRun, deleteRun, listRuns, notARunFolder, patchRun, readRun, writeRecord } from '../../worker/runs/store';
import { readLineage, sha256File } from '../../worker/runs/lineage';
import { finetuneRun, reevaluateRun } from '../../worker/runs/actions';
import { fuseModels } from '../../worker/jobs/run';
import { loadModel } from '../../worker/onnx/model';
import { OtfuseError } from '../../worker/errors';
import type { RunRecord } from '../../worker/types';
import { EXAMPLES, VIT, tempDir } from '../helpers';

const S10 = path.join(VIT, 'vit48_s10.onnx');
const S11 = path.join(VIT, 'vit48_s11.onnx');
const CALIB = path.join(VIT, 'calib200.npz');
const EVAL = path.join(EXAMPLES, 'data', 'fmnist-test-2k.json');
const TRAIN = path.join(EXAMPLES, 'data', 'fmnist-train-5k.json');

// Child mode (the concurrency test starts this file 12 times): claim with a fixed clock, write, commit, print the id.
if (process.env.OTFUSE_EXIT_CHILD) {
  // A run that claims its folder and then quits at once (a second Ctrl-C calls process.exit(130)).
  claimRun(process.env.OTFUSE_EXIT_CHILD, 'quit');
  process.exit(130);
}

if (process.env.OTFUSE_CLAIM_CHILD) {
  const c = claimRun(process.env.OTFUSE_CLAIM_CHILD, 'same', new Date(2026, 0, 2, 3, 4, 5));
  fs.writeFileSync(path.join(c.tmp, 'run.json'), JSON.stringify({ id: c.id }));
  commitRun(c);
  process.stdout.write(c.id);
  process.exit(0);
}

test('claims with the same time stamp get distinct ids, across 12 processes at once', async () => {
  const runsDir = tempDir();
  const ids = await Promise.all(
    Array.from(
      { length: 12 },
      () =>
        new Promise<string>((resolve, reject) => {
          const child = spawn(process.execPath, [__filename], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OTFUSE_CLAIM_CHILD: runsDir } });
          let out = '',
            err = '';
          child.stdout.on('data', (d) => (out += d));
          child.stderr.on('data', (d) => (err += d));
          child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(err))));
        }),
    ),
  );
  assert.equal(new Set(ids).size, 12, `ids: ${ids}`);
  for (const id of ids) assert.match(id, /^20260102-030405-same(-\d+)?$/);
  assert.deepEqual(fs.readdirSync(runsDir).sort(), [...ids].sort(), 'every run committed, no temp folder left');
  for (const id of ids) assert.equal(JSON.parse(fs.readFileSync(path.join(runsDir, id, 'run.json'), 'utf8')).id, id);
});

test('12 concurrent fusions into one runs folder all succeed, each in its own folder', async () => {
  const runsDir = tempDir();
  const results = await Promise.all(
    Array.from({ length: 12 }, () => fuseModels({ models: [S11, S10], runsDir, skipEval: true, recipe: { preset: 'weights', name: 'many' } }, {})),
  );
  const dirs = results.map((r) => r.runDir);
  assert.equal(new Set(dirs).size, 12);
  assert.deepEqual(fs.readdirSync(runsDir).sort(), dirs.map((d) => path.basename(d)).sort(), 'no temp or empty claim folders left');
  for (const r of results) assert.equal(readRun(r.runDir).record!.id, path.basename(r.runDir));
  assert.equal(listRuns(runsDir).length, 12);
});

test('a runs folder that cannot be created fails before any work, naming it', () => {
  const file = path.join(tempDir(), 'plain-file');
  fs.writeFileSync(file, 'x');
  assert.throws(
    () => claimRun(path.join(file, 'runs'), 'x'),
    (err: unknown) => err instanceof OtfuseError && err.code === 'BAD_USAGE' && err.message.includes('plain-file'),
  );
});

test('stale run temp folders are cleaned by their lock, not by PID: a live one (any PID) and unmarked folders stay', () => {
  const runsDir = tempDir();
  // A run killed long ago: marked, lock not refreshed for an hour; its empty claim goes with it.
  const dead = claimRun(runsDir, 'dead');
  fs.writeFileSync(path.join(dead.tmp, 'fused.onnx'), 'partial');
  dead.lock!.release();
  fs.writeFileSync(path.join(dead.tmp, LOCK_FILE), '{}');
  const past = new Date(Date.now() - 3600_000);
  fs.utimesSync(path.join(dead.tmp, LOCK_FILE), past, past);
  // A live run in another PID namespace (container, remote host): its PID means nothing here, its lock is fresh.
  const foreign = path.join(runsDir, '.20260101-000000-y.999999999.abcd.tmp');
  fs.mkdirSync(foreign);
  fs.writeFileSync(path.join(foreign, LOCK_FILE), '{}');
  fs.writeFileSync(path.join(foreign, OWNER_FILE), JSON.stringify({ otfuse: '0.1.0', kind: 'run-temp' }));
  fs.mkdirSync(path.join(runsDir, '20260101-000000-y'));
  // A user's folders that look like temp folders or empty claims: not marked, never removed.
  const userTmp = path.join(runsDir, '.notes.999999999.abcd.tmp');
  const oldEmpty = path.join(runsDir, '20250101-000000-old');
  for (const d of [userTmp, oldEmpty]) fs.mkdirSync(d);
  fs.writeFileSync(path.join(userTmp, 'mine.txt'), 'precious');
  const ancient = new Date(Date.now() - 3 * 24 * 3600 * 1000);
  fs.utimesSync(oldEmpty, ancient, ancient);
  fs.utimesSync(userTmp, ancient, ancient);
  const removed = cleanStaleTemps(runsDir);
  assert.deepEqual(removed.sort(), [dead.dir, dead.tmp].sort());
  assert.ok(fs.existsSync(foreign) && fs.existsSync(path.join(runsDir, '20260101-000000-y')));
  assert.equal(fs.readFileSync(path.join(userTmp, 'mine.txt'), 'utf8'), 'precious');
  assert.ok(fs.existsSync(oldEmpty));
});

test('a run that exits without giving its claim back (process.exit) leaves no temp folder and no empty claim', () => {
  const runsDir = tempDir();
  const r = spawnSync(process.execPath, [__filename], { env: { ...process.env, OTFUSE_EXIT_CHILD: runsDir }, encoding: 'utf8' });
  assert.equal(r.status, 130, r.stderr);
  assert.deepEqual(fs.readdirSync(runsDir), []);
});

test('deleteRun removes only real otfuse run folders', () => {
  const root = tempDir();
  // Any folder with a run.json is not enough.
  const fake = path.join(root, 'project');
  fs.mkdirSync(fake);
  fs.writeFileSync(path.join(fake, 'run.json'), JSON.stringify({ id: 'x' }));
  fs.writeFileSync(path.join(fake, 'thesis.tex'), 'precious');
  assert.match(notARunFolder(fake)!, /not written by otfuse/);
  assert.throws(() => deleteRun(fake), /refusing to delete/);
  assert.ok(fs.existsSync(path.join(fake, 'thesis.tex')));
  // A real record with a stranger file in the folder: refused too.
  const c = claimRun(root, 'real');
  const record = {
    id: c.id,
    name: 'real',
    status: 'done',
    createdAt: new Date().toISOString(),
    recipe: {},
    models: [],
    anchor: '',
    fusedModel: 'fused.onnx',
    versions: { otfuse: '0.1.0' },
    timings: {},
    metrics: [],
    layers: [],
  } as RunRecord;
  writeRecord(c.tmp, record);
  commitRun(c);
  fs.mkdirSync(path.join(c.dir, 'subfolder'));
  assert.match(notARunFolder(c.dir)!, /subfolder/);
  fs.rmdirSync(path.join(c.dir, 'subfolder'));
  // A symbolic link to a run is refused (the link would be followed).
  const link = path.join(root, 'link');
  fs.symlinkSync(c.dir, link);
  assert.match(notARunFolder(link)!, /symbolic link/);
  deleteRun(c.dir);
  assert.ok(!fs.existsSync(c.dir));
});

test('patchRun rewrites run.json atomically and keeps the other fields', () => {
  const root = tempDir();
  const c = claimRun(root, 'p');
  writeRecord(c.tmp, {
    id: c.id,
    name: 'p',
    status: 'done',
    createdAt: 'now',
    recipe: {},
    models: ['a'],
    anchor: 'a',
    fusedModel: 'fused.onnx',
    versions: { otfuse: '0.1.0' },
    timings: {},
    metrics: [{ label: 'ot', role: 'fused', accuracy: 0.5 }],
    layers: [],
  });
  commitRun(c);
  const next = patchRun(c.dir, (r) => {
    r.metrics.push({ label: 'x', role: 'baseline', accuracy: 0.25 });
  });
  assert.deepEqual(
    next.metrics.map((m) => m.label),
    ['ot', 'x'],
  );
  assert.deepEqual(readRun(c.dir).record!.metrics, next.metrics);
  assert.deepEqual(fs.readdirSync(c.dir).sort(), [OWNER_FILE, 'run.json'], 'no temp or lock file left; the owner marker stays');
  assert.throws(
    () => patchRun(path.join(root, 'missing'), () => undefined),
    (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_DATA',
  );
});

test('fused.onnx carries its lineage; evaluation on the calibration data is labelled as such', async () => {
  const runsDir = tempDir();
  const { runDir, record } = await fuseModels({ models: [S11, S10], data: CALIB, evalLimit: 100, runsDir, recipe: { name: 'lineage' } }, {});
  assert.equal(record.evalIsCalibration, true, 'no --eval-data: the metrics are calibration numbers');
  const summary = loadModel(path.join(runDir, 'fused.onnx')).summary();
  assert.match(summary.producer, /^otfuse /);
  const lineage = readLineage(summary.metadata)!;
  assert.ok(lineage, `metadata: ${JSON.stringify(summary.metadata)}`);
  assert.equal(lineage.kind, 'fused');
  // File names and sha256 only (issue 25.6): the model is shared, its folder layout is not.
  assert.deepEqual(lineage.parents, [
    { file: path.basename(S11), sha256: sha256File(S11) },
    { file: path.basename(S10), sha256: sha256File(S10) },
  ]);
  assert.equal(lineage.anchor, path.basename(S11));
  for (const [k, v] of Object.entries(summary.metadata ?? {})) assert.ok(!v.includes(path.dirname(S11)) && !v.includes(runsDir), `${k}: ${v}`);
  assert.equal(lineage.recipe?.solver, 'sinkhorn');
  assert.equal(lineage.accuracies?.ot, record.metrics.find((m) => m.label === 'ot')!.accuracy);
  assert.match(lineage.evalData!, /calib200\.npz \(calibration data\)/);
  // With separate evaluation data there is no such label.
  const held = await fuseModels({ models: [S11, S10], data: CALIB, evalData: EVAL, evalLimit: 100, runsDir, recipe: { preset: 'weights', name: 'held' } }, {});
  assert.equal(held.record.evalIsCalibration, undefined);
});

test('finetuneRun and reevaluateRun write through the engine: ot+finetune and the anchor baseline in run.json', async () => {
  const runsDir = tempDir();
  const { runDir } = await fuseModels({ models: [S11, S10], data: CALIB, evalData: CALIB, runsDir, recipe: { preset: 'weights' } }, {});
  const ft = await finetuneRun({ runDir, data: TRAIN, maxSteps: 8, baseline: true }, {});
  const labels = ft.record.metrics.map((m) => m.label);
  assert.ok(labels.includes('ot+finetune') && labels.includes('anchor+finetune'), labels.join());
  const onDisk = readRun(runDir).record!;
  assert.deepEqual(onDisk.metrics, JSON.parse(JSON.stringify(ft.record.metrics)));
  assert.equal(onDisk.finetune!.steps, 8);
  assert.equal(onDisk.baselineFinetune!.steps, 8);
  assert.ok(fs.existsSync(path.join(runDir, 'finetuned.onnx')) && fs.existsSync(path.join(runDir, 'anchor-finetuned.onnx')));
  assert.equal(readLineage(loadModel(path.join(runDir, 'finetuned.onnx')).summary().metadata)?.kind, 'finetuned');
  // Re-evaluating on the run's own data reproduces the rows exactly; other data leaves run.json alone.
  const again = await reevaluateRun({ runDir }, {});
  assert.equal(again.updated, true);
  assert.deepEqual(again.results.map((r) => r.label).sort(), ['anchor+finetune', 'ot', 'ot+finetune']);
  assert.deepEqual(readRun(runDir).record!.metrics, onDisk.metrics);
  const other = await reevaluateRun({ runDir, data: EVAL, limit: 200 }, {});
  assert.equal(other.updated, false);
  assert.deepEqual(readRun(runDir).record!.metrics, onDisk.metrics);
  assert.equal(other.results[0].samples, 200);
});
