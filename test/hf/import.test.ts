// Importing HF folders: logits equal to PyTorch's (reference logits written by scripts/fixtures/make_hf.py) for
// every architecture and dtype, the same logits as the PyTorch ONNX export the ViT weights came from, the graph
// analysis sees the usual structure, and bad folders are refused naming config.json / the tensor.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { importHf } from '../../worker/hf';
import { loadModel } from '../../worker/onnx/model';
import { analyzeModel } from '../../worker/graph/analyze';
import { OtfuseError } from '../../worker/errors';
import { openDataset } from '../../worker/data/dataset';
import { encodeSafetensorsRaw, parseSafetensors } from '../../worker/hf/safetensors';
import { VIT, maxAbsDiff, tempDir } from '../helpers';
import { hfDir, reference, runFeeds } from './helpers';

const CASES: [string, number][] = [
  ['vit-fmnist-s11', 1e-5], // F32
  ['vit-fmnist-s10-f16', 1e-5], // F16 weights (PyTorch ran the same rounded weights in float32)
  ['vit-tiny-rgb-bf16-sharded', 1e-5], // BF16, two shards
  ['bert-tiny-cls-a', 1e-5],
  ['bert-tiny-cls-f16-sharded', 1e-5],
  ['bert-tiny-mlm', 1e-5], // tied decoder
  ['bert-tiny-mlm-bf16', 1e-5],
];

for (const [name, tol] of CASES) {
  test(`import ${name}: logits equal PyTorch's within ${tol}`, async () => {
    const ref = reference(name);
    const model = importHf(hfDir(name));
    const logits = await runFeeds(model, ref.feeds);
    assert.equal(logits.length, ref.logits.data.length);
    const d = maxAbsDiff(logits, ref.logits.data as Float32Array);
    assert.ok(d <= tol, `max |Δ| = ${d}`);
    // Not trivially equal: the logits vary across samples and classes.
    const spread = Math.max(...(ref.logits.data as Float32Array)) - Math.min(...(ref.logits.data as Float32Array));
    assert.ok(spread > 1e-3, `spread ${spread}`);
  });
}

test('the imported ViT gives the logits of the PyTorch ONNX export its weights came from', async () => {
  const ref = reference('vit-fmnist-s11');
  const a = await runFeeds(importHf(hfDir('vit-fmnist-s11')), ref.feeds);
  const b = await runFeeds(loadModel(path.join(VIT, 'vit48_s11.onnx')), ref.feeds);
  assert.ok(maxAbsDiff(a, b) <= 1e-5, String(maxAbsDiff(a, b)));
});

test('a folder, its model.safetensors and its shard index all load through loadModel', () => {
  const a = loadModel(hfDir('bert-tiny-cls-a'));
  const b = loadModel(path.join(hfDir('bert-tiny-cls-a'), 'model.safetensors'));
  const c = loadModel(path.join(hfDir('vit-tiny-rgb-bf16-sharded'), 'model.safetensors.index.json'));
  assert.equal(a.summary().parameterCount, b.summary().parameterCount);
  assert.deepEqual(
    a.summary().inputs.map((i) => i.name),
    ['input_ids', 'attention_mask', 'token_type_ids'],
  );
  assert.equal(c.summary().inputs[0].name, 'pixel_values');
});

test('graph analysis recognises imported ViT and BERT classifiers', () => {
  const vit = analyzeModel(importHf(hfDir('vit-fmnist-s11')));
  assert.equal(vit.layers, 3);
  assert.equal(vit.heads, 4);
  assert.equal(vit.hidden, 48);
  assert.equal(vit.mlp, 192);
  assert.equal(vit.embedding.kind, 'patch');
  assert.equal(vit.blocks[0].norm, 'pre');
  assert.equal(vit.blocks[0].attn.q.weight, 'vit.encoder.layer.0.attention.attention.query.weight');
  assert.equal(vit.blocks[0].attn.q.outIn, true);
  const bert = analyzeModel(importHf(hfDir('bert-tiny-cls-a')));
  assert.equal(bert.layers, 2);
  assert.equal(bert.heads, 4);
  assert.equal(bert.blocks[1].norm, 'post');
  assert.equal(bert.embedding.kind, 'tokens');
  assert.equal(bert.head.pooler?.weight, 'bert.pooler.dense.weight');
  assert.equal(bert.head.classifier.weight, 'classifier.weight');
});

/** A copy of a fixture folder with config.json edited / files changed, for the refusal tests. */
function variant(name: string, edit: (dir: string, config: Record<string, unknown>) => void): string {
  const dir = path.join(tempDir('otfuse-hf-'), name);
  fs.cpSync(hfDir(name), dir, { recursive: true });
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  edit(dir, config);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

function refuses(dir: string, code: string, pattern: RegExp): void {
  assert.throws(
    () => importHf(dir),
    (err: unknown) => {
      assert.ok(err instanceof OtfuseError, String(err));
      assert.equal(err.code, code);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

test('refuses unsupported architectures, activations and position embeddings, naming config.json and the field', () => {
  refuses(
    variant('bert-tiny-cls-a', (_, c) => {
      c.architectures = ['BertForQuestionAnswering'];
    }),
    'UNSUPPORTED',
    /config\.json.*'architectures'.*BertForQuestionAnswering/,
  );
  refuses(
    variant('bert-tiny-cls-a', (_, c) => {
      c.hidden_act = 'silu';
    }),
    'UNSUPPORTED',
    /config\.json.*'hidden_act'.*silu/,
  );
  refuses(
    variant('bert-tiny-cls-a', (_, c) => {
      c.position_embedding_type = 'relative_key';
    }),
    'UNSUPPORTED',
    /config\.json.*'position_embedding_type'.*relative_key/,
  );
  refuses(
    variant('vit-fmnist-s11', (_, c) => {
      c.model_type = 'deit';
    }),
    'UNSUPPORTED',
    /'model_type'/,
  );
  refuses(
    variant('bert-tiny-cls-a', (_, c) => {
      c.is_decoder = true;
    }),
    'UNSUPPORTED',
    /'is_decoder'/,
  );
});

test('refuses weights that do not match config.json, or a damaged safetensors file', () => {
  refuses(
    variant('bert-tiny-cls-a', (_, c) => {
      c.hidden_size = 64;
    }),
    'BAD_MODEL',
    /shape \[.*\], config\.json implies/,
  );
  refuses(
    variant('bert-tiny-cls-a', (_, c) => {
      c.num_hidden_layers = 3;
    }),
    'BAD_MODEL',
    /no tensor 'bert\.encoder\.layer\.2\./,
  );
  refuses(
    variant('bert-tiny-cls-a', (_, c) => {
      c.num_hidden_layers = 1;
    }),
    'BAD_MODEL',
    /'bert\.encoder\.layer\.1\..*' is not part of/,
  );
  refuses(
    variant('bert-tiny-cls-a', (d) => {
      const f = path.join(d, 'model.safetensors');
      fs.writeFileSync(f, fs.readFileSync(f).subarray(0, -10));
    }),
    'BAD_MODEL',
    /truncated|bytes after|ends at byte/,
  );
  refuses(
    variant('bert-tiny-cls-a', (d) => {
      const f = path.join(d, 'model.safetensors');
      const b = fs.readFileSync(f);
      b.writeBigUInt64LE(10n ** 12n, 0);
      fs.writeFileSync(f, b);
    }),
    'BAD_MODEL',
    /header length/,
  );
  refuses(
    variant('bert-tiny-cls-a', (d) => {
      fs.renameSync(path.join(d, 'model.safetensors'), path.join(d, 'pytorch_model.bin'));
    }),
    'BAD_MODEL',
    /pytorch_model\.bin.*safetensors only/,
  );
  refuses(
    variant('vit-tiny-rgb-bf16-sharded', (d) => {
      fs.rmSync(path.join(d, 'model-00002-of-00002.safetensors'));
    }),
    'BAD_MODEL',
    /cannot open safetensors file: no such file/,
  );
});

test('qkv_bias: false builds Q/K/V without bias Adds; a one-label (regression) head is refused', () => {
  const dir = variant('vit-fmnist-s11', (d, c) => {
    c.qkv_bias = false;
    const f = path.join(d, 'model.safetensors');
    const st = parseSafetensors(fs.readFileSync(f), f);
    fs.writeFileSync(
      f,
      encodeSafetensorsRaw(
        st.entries.filter((e) => !/attention\.attention\.(query|key|value)\.bias$/.test(e.key)),
        st.metadata,
      ),
    );
  });
  const plan = analyzeModel(importHf(dir));
  assert.equal(plan.blocks[0].attn.q.bias, undefined);
  assert.equal(plan.blocks[0].attn.o.bias, 'vit.encoder.layer.0.attention.output.dense.bias');
  refuses(
    variant('bert-tiny-cls-a', (_, c) => {
      c.id2label = { 0: 'score' };
      delete c.label2id;
    }),
    'UNSUPPORTED',
    /'num_labels'.*regression/,
  );
});

test('a JSON data spec names the tokenizer relative to the data file', async () => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 't.jsonl'), '{"text": "the cat", "label": 1}\n{"text": "a dog", "label": "0"}\n');
  fs.cpSync(hfDir('vocab-only'), path.join(dir, 'tok'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify({ path: 't.jsonl', tokenizer: 'tok', maxLength: 8 }));
  const ds = openDataset(path.join(dir, 'spec.json'));
  assert.equal(ds.size, 2);
  assert.deepEqual(Array.from(ds.take([0]).feeds.input_ids.data as BigInt64Array, Number), [2, 73, 74, 3]);
  assert.deepEqual(Array.from(ds.labels), [1, 0]);
  // A vocab-only folder has no config.json: label names cannot be mapped.
  fs.writeFileSync(path.join(dir, 't.jsonl'), '{"text": "a dog", "label": "negative"}\n');
  assert.throws(() => openDataset(path.join(dir, 'spec.json')), /line 1: label 'negative' is neither a class index nor a name/);
});
