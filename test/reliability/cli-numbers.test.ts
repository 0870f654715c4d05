// Issue 15.7: numbers outside their domain are usage errors (exit 2, no stack trace) before any work starts;
// empty datasets and offsets past the end fail instead of printing "0.00 %".
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { engine } from '../../worker/api';
import { OtfuseError } from '../../worker/errors';
import { encodeNpz } from '../../worker/data/npy';
import { EXAMPLES, VIT, runCli, tempDir } from '../helpers';
import { hasStackTrace } from './helpers';

const MODEL = path.join(VIT, 'vit48_s10.onnx');
const CALIB = path.join(VIT, 'calib200.npz');

const usageCases: [string, string[]][] = [
  ['fractional batch size', ['eval', MODEL, '--data', CALIB, '--batch-size', '2.5']],
  ['negative batch size', ['eval', MODEL, '--data', CALIB, '--batch-size', '-3']],
  ['fractional offset', ['eval', MODEL, '--data', CALIB, '--offset', '1.5']],
  ['zero limit', ['eval', MODEL, '--data', CALIB, '--limit', '0']],
  ['negative limit', ['eval', MODEL, '--data', CALIB, '--limit', '-5']],
  ['offset past the end', ['eval', MODEL, '--data', CALIB, '--offset', '200']],
  ['hex number', ['eval', MODEL, '--data', CALIB, '--limit', '0x10']],
  ['empty number', ['eval', MODEL, '--data', CALIB, '--limit', '']],
  ['negative eval limit', ['fuse', MODEL, path.join(VIT, 'vit48_s11.onnx'), '--data', CALIB, '--eval-limit', '-1']],
  ['overflowing weights', ['fuse', MODEL, path.join(VIT, 'vit48_s11.onnx'), '--data', CALIB, '--weights', '1e308,1e308']],
  ['zero epochs', ['finetune', MODEL, '--data', CALIB, '-o', '/tmp/never.onnx', '--epochs', '0']],
  ['NaN lr', ['finetune', MODEL, '--data', CALIB, '-o', '/tmp/never.onnx', '--lr', 'NaN']],
  [
    'zero std',
    [
      'eval',
      MODEL,
      '--data',
      path.join(EXAMPLES, 'data', 'fmnist-test-2k-images-idx3-ubyte.gz'),
      '--labels',
      path.join(EXAMPLES, 'data', 'fmnist-test-2k-labels-idx1-ubyte.gz'),
      '--mean',
      '0.3',
      '--std',
      '0',
    ],
  ],
];

for (const [name, args] of usageCases) {
  test(`usage error, exit 2, no stack trace: ${name}`, () => {
    const dir = tempDir();
    const r = runCli(args, { cwd: dir });
    assert.equal(r.code, 2, `${name}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /otfuse: error: /);
    assert.equal(hasStackTrace(r.stderr), false, r.stderr);
    assert.doesNotMatch(r.stdout, /accuracy/);
    // Nothing was written: no run folder.
    assert.equal(fs.existsSync(path.join(dir, '.otfuse')), false);
  });
}

test('an empty dataset is a data error (exit 1), not a 0.00 % metric', () => {
  const dir = tempDir();
  const file = path.join(dir, 'empty.npz');
  fs.writeFileSync(file, encodeNpz({ x: { data: new Float32Array(0), shape: [0, 1, 28, 28] }, y: { data: new BigInt64Array(0), shape: [0] } }));
  const r = runCli(['eval', MODEL, '--data', file, '--provider', 'cpu']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /empty\.npz: the dataset has no samples/);
});

test('the engine API checks numbers too (the extension path has no CLI parser)', async () => {
  await assert.rejects(engine.evaluate({ model: MODEL, data: CALIB, batchSize: 2.5 }), (e: OtfuseError) => e.code === 'BAD_USAGE');
  await assert.rejects(engine.evaluate({ model: MODEL, data: { path: CALIB, offset: -1 } }), (e: OtfuseError) => e.code === 'BAD_USAGE');
  await assert.rejects(
    engine.fuse({ models: [MODEL, path.join(VIT, 'vit48_s11.onnx')], data: CALIB, recipe: { weights: [1e308, 1e308] } }),
    (e: OtfuseError) => e.code === 'BAD_USAGE' && /finite, positive sum/.test(e.message),
  );
  await assert.rejects(engine.finetune({ model: MODEL, data: CALIB, output: '/tmp/x.onnx', epochs: 0 }), (e: OtfuseError) => e.code === 'BAD_USAGE');
});

test('a model with no inputs (a constant output) is refused, not scored', async () => {
  const { onnx } = await import('onnx-proto');
  const dir = tempDir();
  const value = onnx.TensorProto.create({ name: 'v', dims: [1, 10], dataType: 1, rawData: new Uint8Array(new Float32Array(10).fill(0.5).buffer) });
  const graph = onnx.GraphProto.create({
    name: 'const',
    node: [{ opType: 'Constant', output: ['logits'], name: 'c', attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: value }] }],
    output: [onnx.ValueInfoProto.create({ name: 'logits', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimValue: 10 }] } } } })],
  });
  const file = path.join(dir, 'const.onnx');
  fs.writeFileSync(file, onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph })).finish());
  const r = runCli(['eval', file, '--data', CALIB, '--provider', 'cpu']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /const\.onnx: the model has no inputs/);
  assert.doesNotMatch(r.stdout, /accuracy/);
});
