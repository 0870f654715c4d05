// Issue 15.6: after divergence the checkpoint left at -o is never garbage (finite, not exploded) and an
// existing -o is not replaced by exploded parameters; NaN in the training inputs is an input error.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { encodeNpz } from '../../worker/data/npy';
import { VIT, runCli, tempDir } from '../helpers';
import { hasStackTrace } from './helpers';

const A = path.join(VIT, 'vit48_s10.onnx');
const CALIB = path.join(VIT, 'calib200.npz');

function maxAbsParam(file: string): number {
  const m = loadModel(file);
  let max = 0;
  for (const name of m.initializerNames()) {
    const init = m.getInitializer(name);
    if (init.dataType !== 1) continue;
    for (const v of init.data) max = Math.max(max, Number.isFinite(v) ? Math.abs(v) : Infinity);
  }
  return max;
}

test('a diverging finetune (lr 1000, no clipping) never leaves exploded parameters at -o', () => {
  const dir = tempDir();
  const out = path.join(dir, 'out.onnx');
  const sentinel = Buffer.from('previous checkpoint');
  fs.writeFileSync(out, sentinel);
  const r = runCli([
    'finetune',
    A,
    '--data',
    CALIB,
    '-o',
    out,
    '--lr',
    '1000',
    '--clip-norm',
    '0',
    '--warmup-steps',
    '0',
    '--max-steps',
    '12',
    '--batch-size',
    '16',
    '--provider',
    'cpu',
  ]);
  assert.ok(r.code === 0 || r.code === 1, r.stderr);
  assert.equal(hasStackTrace(r.stderr), false);
  const start = maxAbsParam(A);
  if (r.code === 1) assert.match(r.stderr, /training diverged/);
  const now = fs.readFileSync(out);
  if (!now.equals(sentinel)) {
    const m = maxAbsParam(out);
    assert.ok(m <= Math.max(1e4, 1e3 * start), `checkpoint has max |w| ${m} (start ${start})`);
  }
});

test('NaN in the training inputs is BAD_DATA naming the sample, not "try a lower lr"', () => {
  const dir = tempDir();
  const x = new Float32Array(16 * 784);
  x[5 * 784 + 3] = NaN;
  const file = path.join(dir, 'nan.npz');
  fs.writeFileSync(file, encodeNpz({ x: { data: x, shape: [16, 1, 28, 28] }, y: { data: new BigInt64Array(16), shape: [16] } }));
  const r = runCli(['finetune', A, '--data', file, '-o', path.join(dir, 'o.onnx'), '--max-steps', '2', '--batch-size', '16', '--provider', 'cpu']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /non-finite value \(NaN\) in sample 5/);
  assert.doesNotMatch(r.stderr, /lower --lr/);
  assert.equal(fs.existsSync(path.join(dir, 'o.onnx')), false);
});
