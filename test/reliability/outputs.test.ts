// Issue 15.4 and 15.9: `-o` never replaces an input model; unwritable outputs and bad labels fail before the
// work; a failed finetune stage keeps the fusion run; issue 15.7: Sinkhorn non-convergence is a warning.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { engine } from '../../worker/api';
import { OtfuseError } from '../../worker/errors';
import { encodeNpz } from '../../worker/data/npy';
import { VIT, runCli, tempDir } from '../helpers';
import { hasStackTrace } from './helpers';

const A = path.join(VIT, 'vit48_s10.onnx');
const B = path.join(VIT, 'vit48_s11.onnx');
const CALIB = path.join(VIT, 'calib200.npz');

function copies(): { dir: string; a: string; b: string } {
  const dir = tempDir();
  const a = path.join(dir, 'A.onnx');
  const b = path.join(dir, 'B.onnx');
  fs.copyFileSync(A, a);
  fs.copyFileSync(B, b);
  return { dir, a, b };
}

test('fuse -o onto an input model (same path, a symlink, a hard link) is refused and the input is untouched', () => {
  const { dir, a, b } = copies();
  const before = fs.readFileSync(a);
  fs.symlinkSync(a, path.join(dir, 'link.onnx'));
  fs.linkSync(a, path.join(dir, 'hard.onnx'));
  for (const out of [a, path.join(dir, 'link.onnx'), path.join(dir, 'hard.onnx'), path.join(dir, '.', 'A.onnx')]) {
    const r = runCli(['fuse', a, b, '--data', CALIB, '--samples', '20', '--no-eval', '-o', out, '--runs-dir', path.join(dir, 'runs'), '--provider', 'cpu'], {
      cwd: dir,
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /would replace or change an input/);
    assert.equal(hasStackTrace(r.stderr), false);
  }
  assert.ok(fs.readFileSync(a).equals(before));
  assert.equal(fs.existsSync(path.join(dir, 'runs')), false, 'refused before any run folder exists');
});

test('finetune A -o A is refused', () => {
  const { dir, a } = copies();
  const before = fs.readFileSync(a);
  const r = runCli(['finetune', a, '--data', CALIB, '-o', a, '--max-steps', '1', '--provider', 'cpu'], { cwd: dir });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /would replace or change an input/);
  assert.ok(fs.readFileSync(a).equals(before));
});

test('an unwritable runs folder or -o, and bad eval labels, fail before fusion starts', async () => {
  const { dir, a, b } = copies();
  const ro = path.join(dir, 'ro');
  fs.mkdirSync(ro);
  fs.chmodSync(ro, 0o555);
  const events: string[] = [];
  const onProgress = (e: { stage: string }) => events.push(e.stage);
  const writable = (() => {
    try {
      fs.writeFileSync(path.join(ro, 'x'), '');
      fs.rmSync(path.join(ro, 'x'));
      return true;
    } catch {
      return false;
    }
  })();
  if (!writable) {
    await assert.rejects(
      engine.fuse({ models: [a, b], data: CALIB, runsDir: path.join(ro, 'runs'), recipe: { samples: 20 }, skipEval: true }, { onProgress }),
      (e: OtfuseError) => e.code === 'BAD_USAGE' && /cannot write the runs folder/.test(e.message),
    );
    await assert.rejects(
      engine.fuse(
        { models: [a, b], data: CALIB, output: path.join(ro, 'f.onnx'), runsDir: path.join(dir, 'runs'), recipe: { samples: 20 }, skipEval: true },
        { onProgress },
      ),
      (e: OtfuseError) => /cannot write the output model/.test(e.message),
    );
  }
  // -o naming a folder.
  await assert.rejects(
    engine.fuse({ models: [a, b], data: CALIB, output: dir, runsDir: path.join(dir, 'runs'), recipe: { samples: 20 }, skipEval: true }, { onProgress }),
    /output model is a folder/,
  );
  // Evaluation labels outside the model's 10 classes.
  const badEval = path.join(dir, 'bad-eval.npz');
  fs.writeFileSync(
    badEval,
    encodeNpz({ x: { data: new Float32Array(4 * 784), shape: [4, 1, 28, 28] }, y: { data: BigInt64Array.from([0n, 1n, 12n, 3n]), shape: [4] } }),
  );
  await assert.rejects(
    engine.fuse({ models: [a, b], data: CALIB, evalData: badEval, runsDir: path.join(dir, 'runs'), recipe: { samples: 20 } }, { onProgress }),
    (e: OtfuseError) => e.code === 'BAD_DATA' && /label 12 of sample 2/.test(e.message),
  );
  assert.deepEqual(
    events.filter((s) => s === 'activations' || s === 'align'),
    [],
    'no fusion work was done',
  );
  fs.chmodSync(ro, 0o755);
});

test('a finetune stage that fails keeps the fusion run, with a warning in run.json', async () => {
  const { dir, a, b } = copies();
  // Training data whose inputs are NaN: an input error in the finetune stage, after the fusion is done.
  const nanTrain = path.join(dir, 'nan-train.npz');
  fs.writeFileSync(
    nanTrain,
    encodeNpz({ x: { data: new Float32Array(8 * 784).fill(NaN), shape: [8, 1, 28, 28] }, y: { data: new BigInt64Array(8), shape: [8] } }),
  );
  const r = await engine.fuse({
    models: [a, b],
    data: CALIB,
    runsDir: path.join(dir, 'runs'),
    recipe: { samples: 20 },
    skipEval: true,
    provider: 'cpu',
    finetune: { data: nanTrain, maxSteps: 2 },
  });
  assert.ok(fs.existsSync(path.join(r.runDir, 'fused.onnx')));
  assert.equal(fs.existsSync(path.join(r.runDir, 'finetuned.onnx')), false);
  const rec = JSON.parse(fs.readFileSync(path.join(r.runDir, 'run.json'), 'utf8'));
  assert.match(rec.warnings.join('\n'), /finetune stage failed \(BAD_DATA\)/);
});

test('Sinkhorn that stops at its iteration cap is a warning in the CLI output and run.json', () => {
  const dir = tempDir();
  const r = runCli(
    ['fuse', A, B, '--data', CALIB, '--samples', '20', '--no-eval', '--reg', '1e-300', '--runs-dir', path.join(dir, 'runs'), '--provider', 'cpu', '--json'],
    { cwd: dir },
  );
  if (r.code === 0) {
    const out = JSON.parse(r.stdout);
    assert.match((out.record.warnings ?? []).join('\n'), /without converging/);
    const human = runCli(
      ['fuse', A, B, '--data', CALIB, '--samples', '20', '--no-eval', '--reg', '1e-300', '--runs-dir', path.join(dir, 'runs'), '--provider', 'cpu'],
      { cwd: dir },
    );
    assert.match(human.stdout, /warning: the OT solver stopped at its iteration cap/);
  } else {
    // A solver that reports a numerical failure instead must say so (exit 1, no stack trace).
    assert.equal(r.code, 1, r.stderr);
    assert.equal(hasStackTrace(r.stderr), false);
  }
});
