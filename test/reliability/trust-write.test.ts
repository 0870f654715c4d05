// Issue 25, writes: `-o` is never an input (models, HF folders and their files, teachers, datasets, recipes; real
// paths and inodes), `export --force` and cleanup delete only what otfuse marked as its own, liveness of a temp
// folder is a lock with a heartbeat (not a PID), and no input file changes (hashed before and after).
import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { engine } from '../../worker/api';
import { OtfuseError } from '../../worker/errors';
import { exportHf } from '../../worker/hf/export';
import { LOCK_FILE, OWNER_FILE, makeTempDir } from '../../worker/io/outputs';
import { HEARTBEAT_MS } from '../../worker/io/lock';
import { EXAMPLES, VIT, runCli, tempDir } from '../helpers';
import { hfDir } from '../hf/helpers';
import { hasStackTrace } from './helpers';

const A = path.join(VIT, 'vit48_s10.onnx');
const B = path.join(VIT, 'vit48_s11.onnx');
const CALIB = path.join(VIT, 'calib200.npz');

/** sha256 of every file under `p` (a file or a folder), by relative path. */
function hashes(p: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (f: string, rel: string) => {
    const st = fs.lstatSync(f);
    if (st.isDirectory()) for (const n of fs.readdirSync(f).sort()) walk(path.join(f, n), path.join(rel, n));
    else if (st.isFile()) out[rel] = crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
  };
  walk(p, '.');
  return out;
}

const isUsage = (re: RegExp) => (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_USAGE' && re.test(e.message);

test('finetune/fuse -o onto the training data, a teacher (hard link), the evaluation data (symlink) or the recipe: exit 2, inputs unchanged', () => {
  const dir = tempDir();
  const data = path.join(dir, 'data.npz');
  const evalData = path.join(dir, 'eval.npz');
  const teacher = path.join(dir, 'teacher.onnx');
  const recipe = path.join(dir, 'recipe.json');
  fs.copyFileSync(CALIB, data);
  fs.copyFileSync(CALIB, evalData);
  fs.copyFileSync(B, teacher);
  fs.writeFileSync(recipe, JSON.stringify({ samples: 20 }));
  fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify({ path: 'data.npz' }));
  fs.linkSync(teacher, path.join(dir, 'teacher-hard.onnx'));
  fs.symlinkSync(evalData, path.join(dir, 'eval-link.npz'));
  const before = hashes(dir);
  const cases: string[][] = [
    ['finetune', A, '--data', data, '-o', data, '--max-steps', '1'],
    ['finetune', A, '--data', path.join(dir, 'spec.json'), '-o', data, '--max-steps', '1'],
    ['finetune', A, '--data', CALIB, '--teacher', teacher, '-o', path.join(dir, 'teacher-hard.onnx'), '--max-steps', '1'],
    ['fuse', A, B, '--data', CALIB, '--eval-data', evalData, '--samples', '20', '-o', path.join(dir, 'eval-link.npz')],
    ['fuse', A, B, '--data', CALIB, '--recipe', recipe, '--no-eval', '-o', recipe],
  ];
  for (const args of cases) {
    const runs = args[0] === 'fuse' ? ['--runs-dir', path.join(dir, 'runs')] : [];
    const r = runCli([...args, ...runs, '--provider', 'cpu'], { cwd: dir });
    assert.equal(r.code, 2, `${args.join(' ')}\n${r.stderr}`);
    assert.match(r.stderr, /would replace or change an input/);
    assert.equal(hasStackTrace(r.stderr), false);
  }
  assert.deepEqual(hashes(dir), before);
  assert.equal(fs.existsSync(path.join(dir, 'runs')), false, 'refused before any run folder exists');
});

test('import DIR -o DIR/model.safetensors or DIR/x.onnx, and export -o onto/over the --like folder or the model: refused, nothing changed', async () => {
  const dir = tempDir();
  const hf = path.join(dir, 'hf');
  fs.cpSync(hfDir('bert-tiny-cls-a'), hf, { recursive: true });
  const model = path.join(dir, 'm', 'model.onnx');
  fs.mkdirSync(path.dirname(model));
  await engine.importHf({ model: hf, output: model });
  const before = hashes(dir);
  for (const output of [path.join(hf, 'model.safetensors'), path.join(hf, 'x.onnx')]) {
    await assert.rejects(engine.importHf({ model: hf, output }), isUsage(/Hugging Face model/));
    await assert.rejects(engine.importHf({ model: path.join(hf, 'model.safetensors'), output }), isUsage(/would replace or change an input/));
  }
  for (const output of [hf, path.join(hf, 'sub'), path.dirname(model), dir]) {
    await assert.rejects(exportHf({ model, like: hf, output, force: true }), isUsage(/would replace or change an input/), output);
  }
  // Through the CLI: the same refusal, exit 2.
  const r = runCli(['import', hf, '-o', path.join(hf, 'model.safetensors')]);
  assert.equal(r.code, 2, r.stderr);
  assert.deepEqual(hashes(dir), before);
});

test('export --force replaces only a folder otfuse exported: not a user folder, not the current folder; a user <out>.partial is left alone', async () => {
  const dir = tempDir();
  const like = hfDir('bert-tiny-cls-a');
  const model = hfDir('bert-tiny-cls-b');
  const inputsBefore = [hashes(like), hashes(model)];
  // A user's own folder at the output path.
  const mine = path.join(dir, 'mine');
  fs.mkdirSync(mine);
  fs.writeFileSync(path.join(mine, 'thesis.tex'), 'precious');
  await assert.rejects(exportHf({ model, like, output: mine, force: true }), isUsage(/not written by otfuse/));
  assert.equal(fs.readFileSync(path.join(mine, 'thesis.tex'), 'utf8'), 'precious');
  // A user's <out>.partial next to a new output.
  const out = path.join(dir, 'out');
  fs.mkdirSync(`${out}.partial`);
  fs.writeFileSync(path.join(`${out}.partial`, 'keep.txt'), 'mine');
  await exportHf({ model, like, output: out });
  assert.equal(fs.readFileSync(path.join(`${out}.partial`, 'keep.txt'), 'utf8'), 'mine');
  assert.ok(fs.existsSync(path.join(out, OWNER_FILE)), 'the export is marked as otfuse output');
  assert.equal(fs.existsSync(path.join(out, LOCK_FILE)), false, 'no lock left in a finished export');
  // An export the user has since added a file to is not replaced wholesale.
  fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
  await assert.rejects(exportHf({ model, like, output: out, force: true }), isUsage(/holds 'notes\.txt', which otfuse did not write/));
  assert.equal(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8'), 'mine');
  fs.rmSync(path.join(out, 'notes.txt'));
  // Its own export is replaced with --force; the current folder is not, even when otfuse wrote it.
  await exportHf({ model: like, like, output: out, force: true });
  const cwd = process.cwd();
  process.chdir(out);
  try {
    await assert.rejects(exportHf({ model, like, output: '.', force: true }), isUsage(/current folder/));
    await assert.rejects(exportHf({ model, like, output: out, force: true }), isUsage(/current folder/));
  } finally {
    process.chdir(cwd);
  }
  assert.ok(fs.existsSync(path.join(out, 'model.safetensors')));
  // Nothing else was left next to the outputs (no temp or .old folders).
  assert.deepEqual(fs.readdirSync(dir).sort(), ['mine', 'out', 'out.partial']);
  assert.deepEqual([hashes(like), hashes(model)], inputsBefore, 'no input file changed');
});

test('the lock heartbeat keeps a temp folder fresh while the main thread is blocked (long synchronous work)', () => {
  const dir = tempDir();
  const temp = makeTempDir(path.join(dir, 'x'));
  try {
    const lock = path.join(temp.dir, LOCK_FILE);
    const past = new Date(Date.now() - 3600_000);
    fs.utimesSync(lock, past, past);
    // Block this thread (no event loop turn) in slices until the heartbeat thread has touched the lock.
    const cell = new Int32Array(new SharedArrayBuffer(4));
    let refreshed = false;
    for (let waited = 0; waited < 12 * HEARTBEAT_MS && !refreshed; waited += 250) {
      Atomics.wait(cell, 0, 0, 250);
      refreshed = fs.statSync(lock).mtimeMs > past.getTime() + 1000;
    }
    assert.ok(refreshed, 'the lock was refreshed while the main thread never yielded');
  } finally {
    temp.discard();
  }
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('leftovers: a fusion with baselines leaves nothing in TMPDIR; a killed baselines temp folder goes at the next run', () => {
  const dir = tempDir();
  const tmp = path.join(dir, 'tmp');
  fs.mkdirSync(tmp);
  // What a killed baselines stage left: a marked temp folder whose lock is no longer refreshed.
  const killed = makeTempDir(path.join(tmp, 'otfuse-baselines'));
  killed.lock.release();
  fs.writeFileSync(path.join(killed.dir, LOCK_FILE), '{}');
  const past = new Date(Date.now() - 3600_000);
  fs.utimesSync(path.join(killed.dir, LOCK_FILE), past, past);
  const runs = path.join(dir, 'runs');
  const r = runCli(
    [
      'fuse',
      A,
      B,
      '--data',
      CALIB,
      '--samples',
      '40',
      '--baselines',
      '--finetune',
      '--train-data',
      path.join(EXAMPLES, 'data', 'fmnist-train-5k.json'),
      '--max-steps',
      '2',
      '--eval-limit',
      '50',
    ].concat(['--runs-dir', runs, '--provider', 'cpu']),
    { cwd: dir, env: { TMPDIR: tmp } },
  );
  assert.equal(r.code, 0, r.stderr);
  // ONNX Runtime's telemetry is off (worker/runtime/session.ts): nothing at all is left in TMPDIR.
  assert.deepEqual(fs.readdirSync(tmp), [], 'nothing left in TMPDIR (the killed baselines folder was cleaned too)');
  // The runs folder holds the one run (no temp folder, no empty claim), marked as otfuse's.
  const entries = fs.readdirSync(runs);
  assert.equal(entries.length, 1, entries.join(', '));
  assert.ok(fs.existsSync(path.join(runs, entries[0], OWNER_FILE)));
  assert.equal(fs.existsSync(path.join(runs, entries[0], LOCK_FILE)), false);
});
