// The decoder schedule (worker/fusion/steps/decoder.ts): the symmetry table its handlers derive covers every tensor
// of each fixture checkpoint exactly once, with a map of the right length on every permuted axis; each family picks
// its registry entries (GPT-2: packed-qkv, GELU, LayerNorm; Llama: RoPE + GQA, SwiGLU, RMSNorm); SwiGLU's gate and
// up projections move by one neuron map and down_proj's inputs by the same; biases a config declares get rules.
import assert from 'node:assert/strict';
import path from 'node:path';
import test from 'node:test';
import { readDecoder } from '../../worker/fusion/decoder/parent';
import { applyMaps, coordinateMaps } from '../../worker/fusion/decoder/symmetry';
import { decoderRules, decoderSchedule } from '../../worker/fusion/steps/decoder';
import type { DecoderConfig } from '../../worker/hf/config-decoder';
import { seededRandom } from '../../worker/random';
import { DEC } from '../decoders/helpers';

const id = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
function shuffled(n: number, rnd: () => number): Int32Array {
  const p = id(n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}
const identity = (c: DecoderConfig) => ({
  resid: id(c.hidden),
  heads: Array.from({ length: c.layers }, () => ({ headOrder: id(c.heads), kvOrder: id(c.kvHeads) })),
  mlp: Array.from({ length: c.layers }, () => id(c.intermediate)),
});

for (const name of ['gpt2-s0', 'llama-s1', 'llama-s1-bf16-sharded']) {
  test(`${name}: the schedule's rules cover every checkpoint tensor once, each permuted axis with a map of its length`, () => {
    const p = readDecoder(path.join(DEC, name));
    const c = p.config;
    const rules = decoderRules(c);
    const seen = new Map<string, number>();
    rules.forEach((layer, i) => {
      const coords = coordinateMaps(c, identity(c), i - 1);
      for (const r of layer) {
        seen.set(r.key, (seen.get(r.key) ?? 0) + 1);
        const t = p.tensors.get(r.key);
        assert.ok(t, `rule for '${r.key}', which the checkpoint lacks`);
        assert.equal(r.axes.length, t.shape.length, `'${r.key}': ${r.axes.length} axes for shape [${t.shape}]`);
        r.axes.forEach((a, k) => {
          if (a) assert.equal(coords[a]?.length, t.shape[k], `'${r.key}' axis ${k} (${a})`);
        });
      }
    });
    const tiedHead = c.tied ? ['lm_head.weight'] : [];
    const uncovered = [...p.ckpt.tensors.keys()].filter((k) => !seen.has(k) && !tiedHead.includes(k));
    assert.deepEqual(uncovered, []);
    assert.deepEqual(
      [...seen].filter(([, n]) => n !== 1),
      [],
    );
    const kinds = decoderSchedule(c).map((s) => (s.kind === 'attention' ? s.pattern : s.kind === 'mlp' || s.kind === 'norm' ? s.form : s.kind));
    const expected = c.family === 'gpt2' ? ['packed-qkv', 'gelu', 'layernorm'] : ['rope-gqa', 'swiglu', 'rmsnorm'];
    for (const e of expected) assert.ok(kinds.includes(e as never), `${name}: no ${e} step`);
    assert.equal(kinds.filter((k) => k === expected[0]).length, c.layers);
  });
}

test('SwiGLU: gate_proj and up_proj rows take one neuron map, down_proj its inputs; declared biases get rules', () => {
  const p = readDecoder(path.join(DEC, 'llama-s1'));
  const c = p.config;
  const maps = { ...identity(c), mlp: Array.from({ length: c.layers }, (_, l) => shuffled(c.intermediate, seededRandom(l + 3))) };
  const out = applyMaps(c, p.tensors, maps);
  const H = c.hidden;
  for (const [k, x] of [
    ['gate_proj', 'rows'],
    ['up_proj', 'rows'],
    ['down_proj', 'cols'],
  ] as const) {
    const key = `model.layers.1.mlp.${k}.weight`;
    const src = p.tensors.get(key)!.data;
    const got = out.get(key)!;
    const m = maps.mlp[1];
    for (let i = 0; i < c.intermediate; i += 7) {
      if (x === 'rows') assert.equal(got[i * H + 5], src[m[i] * H + 5], `${k} row ${i}`);
      else assert.equal(got[5 * c.intermediate + i], src[5 * c.intermediate + m[i]], `${k} column ${i}`);
    }
  }
  const withBias = decoderRules({ ...c, qkvBias: true, oBias: true, mlpBias: true })[1];
  const axes = Object.fromEntries(withBias.map((r) => [r.key, r.axes.join(',')]));
  assert.equal(axes['model.layers.0.self_attn.q_proj.bias'], 'heads');
  assert.equal(axes['model.layers.0.self_attn.k_proj.bias'], 'kv');
  assert.equal(axes['model.layers.0.self_attn.v_proj.bias'], 'v');
  assert.equal(axes['model.layers.0.self_attn.o_proj.bias'], 'resid');
  assert.equal(axes['model.layers.0.mlp.gate_proj.bias'], 'mlp');
  assert.equal(axes['model.layers.0.mlp.down_proj.bias'], 'resid');
});
