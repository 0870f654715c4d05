// A finetune that cannot fit is refused before it starts (worker/train/memory.ts): the shape probe and a training step
// are estimated from the probe run's intermediates. On the real GPT-2 fixture: the CLI refuses over --memory-limit with
// exit 2, the batch or samples, the tokens per sample and what to lower, and writes nothing; the probe bytes grow
// faster than linearly with the length (attention), and three short probes extrapolate a longer one exactly.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PROBE_FACTOR, STEP_FACTOR, checkStepMemory, probeActivationBytes, sequenceProbeBytes } from '../../worker/train/memory';
import { probeShapes } from '../../worker/train/probe';
import { loadModel } from '../../worker/onnx/model';
import '../../worker/hf'; // registers Hugging Face folders as a model source
import * as ort from 'onnxruntime-node';
import { runCli, tempDir } from '../helpers';
import { DEC } from '../decoders/helpers';

const S0 = path.join(DEC, 'gpt2-s0');
const CALIB = path.join(DEC, 'calib.txt');

test('a GPT-2 finetune over --memory-limit is refused up front: exit 2, batch and length named, nothing written', () => {
  const dir = tempDir();
  const out = path.join(dir, 'out.onnx');
  const r = runCli(['finetune', S0, '--data', CALIB, '--max-length', '64', '--batch-size', '8', '--max-steps', '2', '--memory-limit', '0.001', '-o', out], {
    cwd: dir,
  });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /(a training step|probing the training graph's shapes) needs about [\d.]+ [MG]iB \((batch 8|3 samples), 64 tokens per sample/);
  assert.match(r.stderr, /allowed by --memory-limit/);
  assert.match(r.stderr, /--max-length/);
  assert.match(r.stderr, /nothing was trained/);
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('the estimate: the probe bytes grow faster than linearly with the length; the advised batch is the largest that fits', async () => {
  const model = await loadModel(S0);
  const bytesAt = async (t: number) => {
    const ids = new BigInt64Array(3 * t).map((_, i) => BigInt((i * 7) % 300));
    return probeActivationBytes(model, await probeShapes(model, { [model.summary().inputs[0].name]: new ort.Tensor('int64', ids, [3, t]) }));
  };
  const b32 = await bytesAt(32);
  const b64 = await bytesAt(64);
  assert.ok(b64 > 2.05 * b32, `64 tokens ${b64} B vs 32 tokens ${b32} B`);
  // Arithmetic: step = STEP_FACTOR × rows' bytes × batch + 16 B per parameter; probe = PROBE_FACTOR × probe bytes + 8 B/param.
  const perRow = 3e8;
  const params = 1e7;
  const limit = params * 16 + STEP_FACTOR * perRow * 5.5;
  assert.throws(
    () => checkStepMemory({ probeBytes: 3 * perRow, probeRows: 3, batch: 8, params, limitBytes: limit }),
    (e: Error) => /a training step needs about/.test(e.message) && /lower --batch-size to 5 or less/.test(e.message) && !/--max-length/.test(e.message),
  );
  const ok = checkStepMemory({ probeBytes: 3 * perRow, probeRows: 3, batch: 5, params, limitBytes: limit });
  assert.ok(Math.abs(ok.step - (STEP_FACTOR * 5 * perRow + params * 16)) < 1);
  assert.ok(Math.abs(ok.probe - (PROBE_FACTOR * 3 * perRow + params * 8)) < 1);
  assert.ok(ok.step <= ok.limit && ok.probe <= ok.limit);
  assert.throws(
    () => checkStepMemory({ probeBytes: 3 * perRow, probeRows: 3, batch: 1, params, sequenceLength: 1024, limitBytes: PROBE_FACTOR * 2 * perRow }),
    (e: Error) => /probing the training graph's shapes needs about .* \(3 samples, 1024 tokens per sample\).*lower --max-length/.test(e.message),
  );
});

test('long sequences are judged from three short probes: 8, 16 and 32 tokens extrapolate the 64-token probe of GPT-2 and Llama', async () => {
  for (const name of ['gpt2-s0', 'llama-s0']) {
    const model = await loadModel(path.join(DEC, name));
    const ids = new BigInt64Array(3 * 64).map((_, i) => BigInt((i * 7) % 300));
    const feeds = { [model.summary().inputs[0].name]: new ort.Tensor('int64', ids, [3, 64]) };
    const full = probeActivationBytes(model, await probeShapes(model, feeds));
    const early = await sequenceProbeBytes(model, feeds, 64, [8, 16, 32]);
    assert.ok(early !== undefined, name);
    assert.ok(Math.abs(early - full) <= 1e-6 * full, `${name}: extrapolated ${early} B, the 64-token probe ${full} B`);
  }
});
