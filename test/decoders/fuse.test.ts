// Decoder fusion respects the symmetries: a copy of a fixture permuted consistently (residual channels, whole
// attention heads — GQA: KV heads with their query-head groups, query heads inside a group —, V/O coordinates inside
// each KV head, MLP neurons; GPT-2's c_attn split and repacked) computes the same function, and fusing it with its original recovers the original
// (logits to 1e-5). Refusals: another model_type, differing vocabularies / tokenizers.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { causalBlocks } from '../../worker/data/causal';
import { applyMaps, type DecoderMaps } from '../../worker/fusion/decoder/symmetry';
import { buildDecoder, checkCompatible, fuseDecoders, fuseParents, readDecoder, type DecoderParent } from '../../worker/fusion/decoder/fuse';
import type { DecoderConfig } from '../../worker/hf/config-decoder';
import { importHf } from '../../worker/hf';
import type { OnnxModel } from '../../worker/onnx/model';
import { seededRandom } from '../../worker/random';
import { runFeeds } from '../hf/helpers';
import { DEC } from './helpers';

const T = 64;

function shuffled(n: number, rnd: () => number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

function randomMaps(c: DecoderConfig, seed: number): DecoderMaps {
  const rnd = seededRandom(seed);
  const rep = c.heads / c.kvHeads;
  return {
    resid: shuffled(c.hidden, rnd),
    heads: Array.from({ length: c.layers }, () => {
      const kvOrder = shuffled(c.kvHeads, rnd);
      const headOrder = new Int32Array(c.heads);
      const hd = c.hidden / c.heads;
      const vCoords = new Int32Array(c.kvHeads * hd);
      for (let g = 0; g < c.kvHeads; g++) {
        const inner = shuffled(rep, rnd);
        for (let i = 0; i < rep; i++) headOrder[g * rep + i] = kvOrder[g] * rep + inner[i];
        // V/O coordinates move freely inside a KV head (the same order for every query head of its group).
        const within = shuffled(hd, rnd);
        for (let k = 0; k < hd; k++) vCoords[g * hd + k] = kvOrder[g] * hd + within[k];
      }
      return { headOrder, kvOrder, vCoords };
    }),
    mlp: Array.from({ length: c.layers }, () => shuffled(c.intermediate, rnd)),
  };
}

function permutedCopy(a: DecoderParent, seed: number): DecoderParent {
  const permuted = applyMaps(a.config, a.tensors, randomMaps(a.config, seed));
  const tensors = new Map(a.tensors);
  for (const [k, data] of permuted) tensors.set(k, { shape: a.tensors.get(k)!.shape, data });
  return { ...a, tensors };
}

async function logits(model: OnnxModel, blocks: Int32Array, rows: number): Promise<Float32Array> {
  const data = BigInt64Array.from(blocks.subarray(0, rows * T), (v) => BigInt(v));
  return runFeeds(model, { input_ids: { dtype: 'i8', shape: [rows, T], data } as never });
}

const maxDiff = (x: Float32Array, y: Float32Array) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);

for (const name of ['gpt2-s0', 'llama-s1', 'qwen2-s0']) {
  test(`${name}: a permuted copy computes the same logits; fused with its original it reproduces the original (1e-5)`, async () => {
    const dir = path.join(DEC, name);
    const { ids } = causalBlocks(path.join(DEC, 'heldout.txt'), dir, T);
    const calib = ids.subarray(0, 8 * T);
    const evalBlocks = ids.subarray(8 * T, 12 * T);
    const a = readDecoder(dir);
    const b = permutedCopy(a, 7);
    // The copy really differs, and the permutations respect the symmetries (same function).
    const key = a.config.family === 'gpt2' ? 'transformer.h.0.attn.c_attn.weight' : 'model.layers.0.self_attn.v_proj.weight';
    assert.ok(maxDiff(a.tensors.get(key)!.data, b.tensors.get(key)!.data) > 0.1, 'the copy is permuted');
    const ref = await logits(importHf(dir), evalBlocks, 4);
    const bt = new Map([...b.tensors].map(([k, t]) => [k, t.data]));
    const dPerm = maxDiff(await logits(buildDecoder(a, bt), evalBlocks, 4), ref);
    assert.ok(dPerm < 1e-4, `permuted copy logits differ by ${dPerm}`);
    // Vanilla averaging of the two breaks the function; OT fusion recovers it.
    const vanilla = await fuseParents(a, b, { calibration: calib, blockLength: T, method: 'vanilla' });
    const dVanilla = maxDiff(await logits(vanilla.model, evalBlocks, 4), ref);
    assert.ok(dVanilla > 0.1, `vanilla averaging should not reproduce the model (Δ ${dVanilla})`);
    const fused = await fuseParents(a, b, { calibration: calib, blockLength: T });
    const d = maxDiff(await logits(fused.model, evalBlocks, 4), ref);
    assert.ok(d < 1e-5, `fused logits differ by ${d}`);
  });
}

function copyFixture(name: string, edit: (config: Record<string, unknown>, tok: Record<string, unknown>) => void): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-dec-'));
  for (const f of fs.readdirSync(path.join(DEC, name))) fs.copyFileSync(path.join(DEC, name, f), path.join(dir, f));
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const tok = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  edit(config, tok);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tok));
  return dir;
}

test('refuses another model_type, sliding-window attention and rope scaling, naming config.json and the field', () => {
  const cases: [string, (c: Record<string, unknown>) => void, RegExp][] = [
    ['gpt2-s0', (c) => (c.model_type = 'gpt_neox'), /config\.json.*'model_type'.*'gpt_neox' is not supported/],
    ['llama-s0', (c) => ((c.model_type = 'mistral'), (c.architectures = ['MistralForCausalLM']), (c.sliding_window = 4096)), /'sliding_window'/],
    ['llama-s0', (c) => (c.rope_scaling = { type: 'linear', factor: 2 }), /'rope_scaling'/],
    ['llama-s0', (c) => (c.num_local_experts = 8), /'num_local_experts'.*mixture-of-experts/],
  ];
  for (const [name, edit, pattern] of cases) {
    const dir = copyFixture(name, (c) => edit(c));
    try {
      assert.throws(
        () => importHf(dir),
        (err: Error & { code?: string }) => err.code === 'UNSUPPORTED' && pattern.test(err.message),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('refuses to fuse decoders whose vocabularies or tokenizers differ: they must share a tokenizer', async () => {
  const a = readDecoder(path.join(DEC, 'gpt2-s0'));
  const other = copyFixture('gpt2-s1', (_, tok) => {
    const vocab = (tok.model as { vocab: Record<string, number> }).vocab;
    const [x, y] = Object.keys(vocab).slice(300, 302);
    [vocab[x], vocab[y]] = [vocab[y], vocab[x]];
  });
  try {
    assert.throws(
      () => checkCompatible(a, readDecoder(other)),
      (err: Error & { code?: string }) => err.code === 'MISMATCH' && /tokenizers differ.*share a tokenizer/.test(err.message),
    );
  } finally {
    fs.rmSync(other, { recursive: true, force: true });
  }
  // A smaller vocabulary (different vocab_size): refused before any work.
  const small = { ...a, config: { ...a.config, vocab: a.config.vocab - 1 } };
  assert.throws(
    () => checkCompatible(a, small),
    (err: Error & { code?: string }) => err.code === 'MISMATCH' && /vocabularies differ.*share a tokenizer/.test(err.message),
  );
  // Another depth or position table: refused naming the field.
  assert.throws(
    () => checkCompatible(a, { ...a, config: { ...a.config, maxPositions: 128 } }),
    (err: Error & { code?: string }) => err.code === 'MISMATCH' && /maxPositions \(64 vs 128\)/.test(err.message),
  );
  // Same-shaped parents with the same tokenizer fuse (GPT-2 seeds 0 and 1).
  const { ids } = causalBlocks(path.join(DEC, 'heldout.txt'), path.join(DEC, 'gpt2-s0'), T);
  const f = await fuseDecoders(path.join(DEC, 'gpt2-s0'), path.join(DEC, 'gpt2-s1'), { calibration: ids.subarray(0, 4 * T), blockLength: T });
  assert.equal(f.maps.mlp.length, 2);
});

test("mistral with sliding_window null is Llama's computation; an eos_token given as an AddedToken object is read", async () => {
  const dir = copyFixture('llama-s0', (c) => {
    c.model_type = 'mistral';
    c.architectures = ['MistralForCausalLM'];
    c.sliding_window = null;
  });
  try {
    const ids = causalBlocks(path.join(DEC, 'heldout.txt'), dir, T).ids;
    const ref = causalBlocks(path.join(DEC, 'heldout.txt'), path.join(DEC, 'llama-s0'), T).ids;
    assert.deepEqual([...ids], [...ref]);
    const m = importHf(dir);
    assert.equal(m.proto.metadataProps?.find((p) => p.key === 'otfuse.hf.architecture')?.value, 'MistralForCausalLM');
    const d = maxDiff(await logits(m, ids, 2), await logits(importHf(path.join(DEC, 'llama-s0')), ids, 2));
    assert.equal(d, 0);
    // eos_token as an object naming another token (id 1): every line now ends with id 1 instead of 0.
    const tok = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
    const one = Object.entries(tok.model.vocab as Record<string, number>).find(([, id]) => id === 1)![0];
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    cfg.eos_token = { content: one, lstrip: false, rstrip: false, normalized: false, single_word: false, special: true, __type: 'AddedToken' };
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    const eos1 = causalBlocks(path.join(DEC, 'heldout.txt'), dir, T).ids;
    assert.deepEqual(
      [...eos1],
      [...ref].map((v) => (v === 0 ? 1 : v)),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
