// ONNX Runtime writes nothing of its own: the Linux build links Microsoft's 1DS telemetry SDK, which creates
// `mat-debug-<pid>.log` in the temp folder of every process that starts an ORT environment unless
// ORT_DISABLE_TELEMETRY is set (worker/runtime/session.ts sets it for this process, the sync-run thread and the
// provider probe's child). Each test points the temp folder at a fresh directory and looks for the file there.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { ortSessionOptions } from '../../worker/runtime/session';
import { EXAMPLES, runCli, tempDir } from '../helpers';

const S10 = path.join(EXAMPLES, 'vit48_s10.onnx');
const S11 = path.join(EXAMPLES, 'vit48_s11.onnx');
const CALIB = path.join(EXAMPLES, 'calib200.npz');

const ortLogs = (dir: string): string[] => fs.readdirSync(dir).filter((f) => f.startsWith('mat-debug-'));

test('ort quiet: an in-process fuse (capture, cost, Sinkhorn, refit) and an evaluation leave no mat-debug log', async () => {
  const dir = tempDir('otfuse-ortlog-');
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = dir; // read by ONNX Runtime when its environment starts (the first session of this process)
  try {
    const models = [loadModel(S11), loadModel(S10)];
    const calib = openDataset(CALIB);
    const recipe = resolveRecipe({ solver: 'sinkhorn', reg: 0.08, refit: 'regmean', samples: 64 });
    const { fused } = await fuseLoaded({ models, recipe, calib, provider: 'cpu' });
    const r = await evaluateModel(fused, calib, { provider: 'cpu' });
    assert.ok(r.accuracy > 0.5, `fused model evaluates (accuracy ${r.accuracy})`);
    calib.close();
    assert.deepEqual(ortLogs(dir), [], `ONNX Runtime wrote into ${dir}`);
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('ort quiet: the CLI fuse with evaluation and the provider probe leaves no mat-debug log', () => {
  const dir = tempDir('otfuse-ortlog-');
  try {
    const runs = path.join(dir, 'runs');
    const r = runCli(['fuse', S11, S10, '--data', CALIB, '--solver', 'emd', '--provider', 'auto', '--runs-dir', runs, '--json'], { env: { TMPDIR: dir } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(ortLogs(dir), [], `ONNX Runtime wrote into ${dir}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('ort sessions: pool threads sleep between calls unless a caller asks them to spin (several sessions share the cores with JavaScript)', () => {
  const spin = (o: ReturnType<typeof ortSessionOptions>) =>
    (o.extra as { session?: { intra_op?: { allow_spinning?: string } } } | undefined)?.session?.intra_op?.allow_spinning;
  assert.equal(spin(ortSessionOptions()), '0');
  assert.equal(spin(ortSessionOptions({ threads: 1, memArena: false })), '0');
  assert.equal(spin(ortSessionOptions({ spinning: true })), undefined); // ORT's own default (spin)
});
