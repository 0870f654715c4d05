// Qwen2 (model_type qwen2: the Llama block with biases on q/k/v, tied embeddings), on the qwen2-s0 fixture
// (scripts/fixtures/make_decoders.py --qwen2-only). Logits and perplexity against PyTorch are in import.test.ts and
// the permuted-copy self-fusion in fuse.test.ts (both loop over the fixtures); here: the fixture really exercises the
// biases, and an HF export (--like the fixture) keeps model_type qwen2 and the biases and reloads with the same logits.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { engine } from '../../worker/api';
import { importHf } from '../../worker/hf';
import { readSafetensorsFile, toFloat32 } from '../../worker/hf/safetensors';
import { runFeeds } from '../hf/helpers';
import { DEC, decReference } from './helpers';

const Q = path.join(DEC, 'qwen2-s0');

function biases(file: string): Map<string, Float32Array> {
  const st = readSafetensorsFile(file);
  const out = new Map<string, Float32Array>();
  for (const e of st.entries) if (/self_attn\.[qkv]_proj\.bias$/.test(e.key)) out.set(e.key, toFloat32(e, file));
  return out;
}

test('qwen2-s0: q/k/v biases present and non-zero, no o_proj bias, tied embeddings', () => {
  const b = biases(path.join(Q, 'model.safetensors'));
  assert.equal(b.size, 2 * 3, 'q/k/v biases of both layers');
  for (const [k, v] of b) assert.ok(Math.max(...v.map(Math.abs)) > 0.05, `${k} is not ~0`);
  const keys = readSafetensorsFile(path.join(Q, 'model.safetensors')).entries.map((e) => e.key);
  assert.ok(!keys.some((k) => k.includes('o_proj.bias')) && !keys.includes('lm_head.weight'));
});

test('qwen2-s0 exported back to an HF folder: model_type qwen2, the same biases, the same logits on re-import', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-qwen2-'));
  try {
    const out = path.join(tmp, 'exported');
    await engine.exportHf({ model: Q, like: Q, output: out });
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    assert.equal(config.model_type, 'qwen2');
    assert.deepEqual(config.architectures, ['Qwen2ForCausalLM']);
    const files = fs.readdirSync(out).filter((f) => f.endsWith('.safetensors'));
    const got = new Map(files.flatMap((f) => [...biases(path.join(out, f))]));
    for (const [k, v] of biases(path.join(Q, 'model.safetensors'))) assert.deepEqual(got.get(k), v, k);
    const ref = decReference('qwen2-s0');
    const block = BigInt64Array.from(ref.blocks.subarray(0, 2 * ref.t), (v) => BigInt(v));
    const feeds = { input_ids: { dtype: 'i8', shape: [2, ref.t], data: block } as never };
    const a = await runFeeds(importHf(Q), feeds);
    const b = await runFeeds(importHf(out), feeds);
    let d = 0;
    for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
    assert.ok(d < 1e-6, `re-imported logits differ by ${d}`);
    // And they are PyTorch's (block 0, first 16 positions).
    let dRef = 0;
    for (let i = 0; i < ref.logits0.length; i++) dRef = Math.max(dRef, Math.abs(b[i] - ref.logits0[i]));
    assert.ok(dRef < 1e-4, `exported model vs PyTorch: max |Δlogit| ${dRef}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
