// Graph analysis of what PyTorch's own modules export (issue 13): nn.TransformerEncoder (nn.MultiheadAttention
// inside; pre/post-LN, ReLU/GELU, batch_first True/False), torchvision's VisionTransformer and a timm-style ViT
// with one packed qkv Linear, each at opset 14 and 17 (test/fixtures/torch, scripts/fixtures/torch_exports.py).
import test from 'node:test';
import assert from 'node:assert/strict';
import { analyzeModel, type ModelPlan } from '../../worker/graph/analyze';
import { analyzeAlignment } from '../../worker/fusion/summary';
import { OtfuseError } from '../../worker/errors';
import { captureActivations } from '../../worker/fusion/activations';
import { normalizeLayout } from '../../worker/fusion/samples';
import { maxAbsDiff, runCli } from '../helpers';
import { logitsOf } from '../fusion/vit-helpers';
import { ALL_VARIANTS, OPSETS, TINY, fixturePath, hasTiny, loadGz, referenceInputs, tiny, tinyReference, unpacked } from './torch-fixtures';

const HIDDEN = 24,
  MLP = 48,
  HEADS = 4;

test('every variant is there at opset 14 and 17 (the timm export variants at one opset each)', () => {
  for (const v of ALL_VARIANTS)
    for (const op of OPSETS) assert.equal(hasTiny(v, op), !(v === 'timm_index' && op === 17) && !(v === 'timm_split' && op === 14), `${v} op${op}`);
});

for (const variant of ALL_VARIANTS) {
  for (const opset of OPSETS.filter((op) => hasTiny(variant, op))) {
    test(`${variant} opset ${opset}: ONNX Runtime reproduces PyTorch's logits and the plan has every layer in its role`, async () => {
      const model = tiny(variant, opset);
      const want = tinyReference().logits[variant].logits.flat();
      const got = await logitsOf(model, referenceInputs(), 4);
      assert.ok(maxAbsDiff(want, got) < 1e-5, `ORT vs PyTorch: ${maxAbsDiff(want, got)}`);

      const plan = analyzeModel(model);
      assert.equal(plan.layers, 2);
      assert.equal(plan.hidden, HIDDEN);
      assert.equal(plan.heads, HEADS);
      assert.equal(plan.headDim, HIDDEN / HEADS);
      assert.equal(plan.mlp, MLP);
      assert.equal(plan.tokens, 17);
      assert.equal(plan.head.classes, 10);
      const post = variant.startsWith('enc_post');
      const seqFirst = variant.endsWith('_sf');
      for (const b of plan.blocks) {
        assert.equal(b.norm, post ? 'post' : 'pre');
        // Packed Q/K/V: one initializer, three consecutive ranges in the order PyTorch packs them.
        const { q, k, v, o } = b.attn;
        assert.equal(q.weight, k.weight);
        assert.equal(k.weight, v.weight);
        assert.equal(q.bias, v.bias);
        assert.deepEqual(
          [q.slice, k.slice, v.slice],
          [
            { offset: 0, size: HIDDEN },
            { offset: HIDDEN, size: HIDDEN },
            { offset: 2 * HIDDEN, size: HIDDEN },
          ],
        );
        for (const l of [q, k, v]) assert.equal(l.outDim, HIDDEN);
        assert.equal(o.slice, undefined);
        assert.equal(o.outDim, HIDDEN);
        assert.equal(b.fc1.outDim, MLP);
        const act = b.activation.join(',');
        if (variant.includes('relu')) assert.equal(act, 'Relu');
        else assert.ok(act.includes('Erf'), `GELU as exported: ${act}`);
      }
      // The residual stream is sequence-first exactly for batch_first=False; inside nn.MultiheadAttention the
      // projections are always sequence-first (torch 1.13 transposes before in_proj); timm stays batch-first.
      assert.equal(plan.seqFirst.includes(plan.blocks[0].input), seqFirst);
      assert.equal(plan.seqFirst.includes(plan.blocks[1].fc1.out), seqFirst);
      assert.equal(plan.seqFirst.includes(plan.blocks[0].attn.q.out), !variant.startsWith('timm'));
      assert.equal(plan.head.tokenAxis, seqFirst ? 0 : 1);
      if (variant === 'timm' || variant === 'timm_index') {
        assert.deepEqual(Object.keys(plan.views).length, 6);
        const view = plan.views[plan.blocks[0].attn.k.out];
        assert.deepEqual({ offset: view.offset, size: view.size }, { offset: HIDDEN, size: HIDDEN });
      } else {
        assert.deepEqual(plan.views, {});
      }
    });
  }
}

test('inspect --alignment lists every group of a packed-attention model, with the packed ranges', () => {
  const file = unpacked(fixturePath(TINY, 'enc_post_gelu_sf_tiny_op14'));
  const r = runCli(['inspect', file, '--alignment', '--json', '--provider', 'cpu']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  const groups = (out.alignment ?? out).groups as { name: string; params: string[] }[];
  const names = groups.map((g) => g.name);
  const want = ['embed.cls', 'embed.pos', 'embed.patch'];
  for (const b of [0, 1]) want.push(...['attn.q', 'attn.k', 'attn.v', 'attn.o', 'ln1', 'mlp.fc1', 'mlp.fc2', 'ln2'].map((x) => `blocks.${b}.${x}`));
  want.push('head.classifier');
  assert.deepEqual([...names].sort(), [...want].sort());
  const k = groups.find((g) => g.name === 'blocks.1.attn.k')!;
  assert.match(k.params[0], /cols 24\.\.48/);
});

test('summary text names the layout and the packing', () => {
  const s = analyzeAlignment(tiny('enc_pre_relu_sf', 17));
  assert.match(s.text, /sequence-first stream/);
  assert.match(s.text, /packed Q\/K\/V/);
  assert.equal(s.groups.length, 3 + 2 * 8 + 2); // + final encoder LayerNorm and classifier
});

test('normalizeLayout: sequence-first batches become batch-first; views take their range of the last axis', () => {
  // [T=2, B=3, D=4]: value = 100·t + 10·b + d
  const T = 2,
    B = 3,
    D = 4;
  const x = new Float32Array(T * B * D);
  for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) for (let d = 0; d < D; d++) x[(t * B + b) * D + d] = 100 * t + 10 * b + d;
  const r = normalizeLayout(x, [T, B, D], { seqFirst: true, view: { tensor: 'p', offset: 1, size: 2 } });
  assert.deepEqual(r.dims, [B, T, 2]);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let d = 0; d < 2; d++) assert.equal(r.data[(b * T + t) * 2 + d], 100 * t + 10 * b + d + 1);
  const same = normalizeLayout(x, [T, B, D], {});
  assert.notEqual(same.data, x);
  assert.deepEqual(Array.from(same.data), Array.from(x));
});

/** Activations of a plan's stream/attention tensors, with the CLS filter (token 0 of each sample). */
async function clsActs(variant: string, plan: ModelPlan, tensors: string[]): Promise<Float32Array[]> {
  const store = await captureActivations(
    tiny(variant, 17),
    plan,
    referenceInputs(),
    { samples: 4, batchSize: 3, tokenFilter: 'cls', standardize: false, hasCls: true, grid: [4, 4] },
    tensors.map((tensor) => ({ tensor, layout: 'tokens' as const, seqFirst: plan.seqFirst.includes(tensor) || undefined, view: plan.views[tensor] })),
  );
  return tensors.map((t) => store.get(t).X);
}

test('capture honours the layout: batch_first=False and True twins (same weights) give the same CLS activations', async () => {
  for (const ln of ['post', 'pre']) {
    const sf = analyzeModel(tiny(`enc_${ln}_relu_sf`, 17)),
      bf = analyzeModel(tiny(`enc_${ln}_relu_bf`, 17));
    const pick = (p: ModelPlan) => [
      p.blocks[0].input,
      p.blocks[0].attn.q.out,
      p.blocks[0].attn.v.out,
      p.blocks[0].attn.o.out,
      p.blocks[1].fc1.out,
      p.blocks[1].attnAdd,
    ];
    const a = await clsActs(`enc_${ln}_relu_sf`, sf, pick(sf));
    const b = await clsActs(`enc_${ln}_relu_bf`, bf, pick(bf));
    a.forEach((x, i) => {
      assert.equal(x.length, b[i].length);
      assert.ok(maxAbsDiff(x, b[i]) < 1e-5, `${ln} tensor ${i}: ${maxAbsDiff(x, b[i])}`);
    });
    // ...and a wrong layout would not: reading the sequence-first stream as batch-first picks other tokens.
    const wrong = await captureActivations(
      tiny(`enc_${ln}_relu_sf`, 17),
      sf,
      referenceInputs(),
      { samples: 4, batchSize: 3, tokenFilter: 'cls', standardize: false, hasCls: true },
      [{ tensor: sf.blocks[0].input, layout: 'tokens' }],
    );
    assert.ok(maxAbsDiff(wrong.get(sf.blocks[0].input).X.subarray(0, a[0].length), a[0]) > 1e-3);
  }
});

test('a packed-qkv view captures exactly its slice of the packed output', async () => {
  const plan = analyzeModel(tiny('timm', 14));
  const [q, k, v] = [plan.blocks[1].attn.q, plan.blocks[1].attn.k, plan.blocks[1].attn.v];
  const store = await captureActivations(
    tiny('timm', 14),
    plan,
    referenceInputs(),
    { samples: 4, batchSize: 4, tokenFilter: 'all', standardize: false, hasCls: true },
    [q.out, k.out, v.out]
      .map((tensor) => ({ tensor, layout: 'tokens' as const, view: plan.views[tensor] }))
      .concat([{ tensor: plan.views[q.out].tensor, layout: 'tokens' as const, view: undefined as never }]),
  );
  const whole = store.get(plan.views[q.out].tensor); // 72 neurons × samples
  assert.equal(whole.neurons, 3 * HIDDEN);
  const parts = [q, k, v].map((l) => store.get(l.out));
  parts.forEach((p, i) => {
    assert.equal(p.neurons, HIDDEN);
    assert.deepEqual(Array.from(p.X), Array.from(whole.X.subarray(i * HIDDEN * whole.samples, (i + 1) * HIDDEN * whole.samples)));
  });
});

test('refusals name the node and the pattern expected: a packed range computed as empty', () => {
  const model = tiny('enc_pre_relu_bf', 14);
  // Q's end (= K's start) is computed as (3E+2)/3·1; a multiplier 0 makes Q empty.
  const slice = model.nodes.find((n) => n.opType === 'Slice' && (n.name ?? '').includes('layers.1/self_attn/Slice_1'))!;
  const mul = model.nodes.find((n) => n.output![0] === slice.input![1])!;
  const c = model.nodes.find((n) => n.output![0] === mul.input![1])!;
  const t = c.attribute![0].t!;
  t.rawData = new Uint8Array(new BigInt64Array([0n]).buffer);
  assert.throws(
    () => analyzeModel(model),
    (e: unknown) => {
      assert.ok(e instanceof OtfuseError);
      assert.equal(e.code, 'UNSUPPORTED');
      assert.equal(e.node, '/encoder/layers.1/self_attn/Slice');
      assert.match(e.message, /packed projection '\/encoder\/layers\.1\/self_attn\/MatMul' has bounds that are not a step-1 range of its 72 outputs/);
      return true;
    },
  );
});

test('refusals: an initializer shared by two layers (tied across blocks) is named once', () => {
  const model = tiny('tv', 17);
  const plan = analyzeModel(model);
  const [a, b] = [plan.blocks[0].fc1, plan.blocks[1].fc1];
  const node = model.nodes.find((n) => n.name === b.node)!;
  node.input![node.input![0] === b.weight ? 0 : 1] = a.weight;
  assert.throws(() => analyzeModel(model), /is shared by layers/);
});

test('refusals: a LayerNorm parameter merged across blocks (as exporters do for equal values) is named', () => {
  const model = tiny('enc_pre_gelu_sf', 14);
  const plan = analyzeModel(model);
  const [a, b] = [plan.blocks[0].ln2!, plan.blocks[1].ln2!];
  for (const n of model.nodes) n.input = n.input!.map((i) => (i === b.scale ? a.scale! : i));
  assert.throws(
    () => analyzeModel(model),
    (e: unknown) => e instanceof OtfuseError && /parameter '.*norm2.*' is shared by layers/.test(e.message),
  );
});

test('a BERT masked-LM export is refused with the reason: per-token head, decoder a transposed copy of the word embedding', () => {
  const model = loadGz(fixturePath(TINY, 'bert_mlm_tiny_op17'));
  assert.throws(
    () => analyzeModel(model),
    (e: unknown) => {
      assert.ok(e instanceof OtfuseError);
      assert.equal(e.code, 'UNSUPPORTED');
      assert.equal(e.node, '/transform/MatMul');
      assert.match(e.message, /per-token head/);
      assert.match(e.message, /decoder '\/decoder\/MatMul' uses '.*', a transposed copy of the embedding table 'word\.weight'/);
      return true;
    },
  );
});
