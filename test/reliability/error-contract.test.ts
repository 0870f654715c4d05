// Issue 15.10 / 25.13: Node error codes map to the documented codes with the file named; ORT messages give the
// right node; `auto` prints no provider-probe noise; errors from code that knows no file (cost, OT, refit) reach the
// user naming the model file and node. (Which folders count as runs: test/runs/store.test.ts.)
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ERROR_CODES, OtfuseError, toErrorInfo } from '../../worker/errors';
import { nodeInMessage } from '../../worker/runtime/runner';
import { loadModel } from '../../worker/onnx/model';
import { VIT, runCli, tempDir } from '../helpers';
import { hasStackTrace } from './helpers';
import { causalBlocks } from '../../worker/data/causal';
import { fuseParents, readDecoder } from '../../worker/fusion/decoder/fuse';
import { DEC } from '../decoders/helpers';

test('Node error codes become documented codes that name the file', () => {
  const cases: [string, string][] = [
    ['ENOSPC', 'IO'],
    ['EROFS', 'IO'],
    ['ENOTEMPTY', 'IO'],
    ['Z_DATA_ERROR', 'BAD_DATA'],
    ['ERR_BUFFER_TOO_LARGE', 'BAD_DATA'],
    ['EWHATEVER', 'INTERNAL'],
  ];
  for (const [code, expected] of cases) {
    const err = Object.assign(new Error(`${code}: something, write`), { code, path: '/x/run/fused.onnx' });
    const info = toErrorInfo(err);
    assert.equal(info.code, expected, code);
    assert.ok(ERROR_CODES.includes(info.code));
    assert.equal(info.file, '/x/run/fused.onnx');
    assert.ok(info.message.includes('/x/run/fused.onnx'), info.message);
  }
  assert.equal(toErrorInfo(new RangeError('Array buffer allocation failed')).code, 'BAD_DATA');
});

test("ORT messages: the node name, never the word after 'Node input'", () => {
  assert.equal(
    nodeInMessage(new Error("Non-zero status code returned while running MatMul node. Name:'/blocks.0/attn/MatMul' Status Message: bad")),
    '/blocks.0/attn/MatMul',
  );
  assert.equal(nodeInMessage(new Error('Node (fc1) Op (Gemm) [ShapeInferenceError] Incompatible dimensions')), 'fc1');
  assert.equal(
    nodeInMessage(new Error("This is an invalid model. Node input 'x_missing' is not a graph input, initializer, or output of a previous node.")),
    undefined,
  );
});

test('default provider auto prints no Vulkan/XDG probe noise on stderr', () => {
  const r = runCli(['eval', path.join(VIT, 'vit48_s10.onnx'), '--data', path.join(VIT, 'calib200.npz'), '--limit', '8']);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /XDG_RUNTIME_DIR|vulkan|Vulkan|wgpu|dawn/i);
});

test('a write the file system refuses is an IO error naming the target, with no temp file left', async () => {
  const { writeFileAtomic } = await import('../../worker/onnx/atomic');
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'file'), 'x');
  const target = path.join(dir, 'file', 'fused.onnx'); // parent is a file: ENOTDIR/EEXIST
  assert.throws(
    () => writeFileAtomic(target, 'data'),
    (e: OtfuseError) => e.code === 'IO' && e.message.includes(target),
  );
  assert.deepEqual(fs.readdirSync(dir), ['file']);
});

// Item 13 of #25: errors from code that knows no file (the cost, the OT solver, the refit's linear algebra) reach
// the user naming the model file and the layer's node, as the caller that knows them re-throws them.

/** A copy of vit48_s11 with every entry of one (finite) initializer set to `value`: activations overflow later. */
function overflowing(dir: string, tensor: string, value: number): string {
  const m = loadModel(path.join(VIT, 'vit48_s11.onnx'));
  m.setInitializer(tensor, new Float32Array(m.getInitializer(tensor).data.length).fill(value));
  const file = path.join(dir, 'overflow.onnx');
  m.save(file);
  return file;
}

function fuseOnto(dir: string, other: string) {
  const args = ['fuse', path.join(VIT, 'vit48_s10.onnx'), other, '--data', path.join(VIT, 'calib200.npz'), '--samples', '20', '--no-eval'];
  return runCli([...args, '--runs-dir', path.join(dir, 'runs'), '--provider', 'cpu'], { cwd: dir });
}

test('a cost with non-finite activations names the aligned model, its node and the step (exit 1, no stack)', () => {
  const dir = tempDir();
  // LayerNorm scale 3e38: its output overflows to ±Inf, so fc1's activations are not finite.
  const file = overflowing(dir, 'vit.encoder.layer.0.layernorm_after.weight', 3e38);
  const r = fuseOnto(dir, file);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /NUMERIC|non-finite/);
  assert.ok(r.stderr.includes(`${file}, node '/vit/encoder/layer.0/intermediate/dense/MatMul'`), r.stderr);
  assert.ok(r.stderr.includes("step 'blocks.0.mlp.fc1'") && r.stderr.includes('non-finite value'), r.stderr);
  assert.equal(hasStackTrace(r.stderr), false, r.stderr);
});

test('a refit whose Gram is not positive definite names the parent, the layer node and the data (exit 1, no stack)', () => {
  const dir = tempDir();
  // fc1 bias 3e38: GELU passes it, fc2's input Gram overflows in that parent only.
  const file = overflowing(dir, 'vit.encoder.layer.0.intermediate.dense.bias', 3e38);
  const r = fuseOnto(dir, file);
  assert.equal(r.code, 1, r.stderr);
  assert.ok(r.stderr.includes(`${file}, node '/vit/encoder/layer.0/output/dense/MatMul'`), r.stderr);
  assert.ok(r.stderr.includes('calib200.npz') && r.stderr.includes('not positive definite'), r.stderr);
  assert.equal(hasStackTrace(r.stderr), false, r.stderr);
});

test('decoder fusion: non-finite activations in one parent name that folder and the anchor (NUMERIC)', async () => {
  const dir = path.join(DEC, 'gpt2-s0');
  const calibration = causalBlocks(path.join(DEC, 'heldout.txt'), dir, 64).ids.subarray(0, 4 * 64);
  const a = readDecoder(dir);
  // The same checkpoint under another name, its first MLP's LayerNorm scale 3e38: that MLP's activations overflow.
  const tensors = new Map(a.tensors);
  const ln = tensors.get('transformer.h.0.ln_2.weight')!;
  tensors.set('transformer.h.0.ln_2.weight', { shape: ln.shape, data: new Float32Array(ln.data.length).fill(3e38) });
  const b = { ...a, dir: path.join(tempDir(), 'overflow'), tensors };
  await assert.rejects(fuseParents(a, b, { calibration, blockLength: 64 }), (e: OtfuseError) => {
    assert.equal(e.code, 'NUMERIC', e.message);
    assert.equal(e.file, b.dir);
    assert.ok(e.message.startsWith(`${b.dir}: aligning onto ${dir}: `) && /non-finite/.test(e.message), e.message);
    return true;
  });
});
