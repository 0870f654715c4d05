// Exporting to Hugging Face folders: export(import(dir)) reproduces the safetensors byte for byte (single file and
// shards, F32/F16/BF16, tied MLM decoder); a fused model's folder loads back with the fused logits; models from a
// PyTorch ONNX export (other initializer names, transposed weights, another width) map by graph role, and
// config.json takes the new widths; failures leave nothing behind.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { engine } from '../../worker/api';
import { importHf } from '../../worker/hf';
import { exportHf } from '../../worker/hf/export';
import { readCheckpoint } from '../../worker/hf/checkpoint';
import { encodeSafetensorsRaw, parseSafetensors } from '../../worker/hf/safetensors';
import { loadModel } from '../../worker/onnx/model';
import { OtfuseError } from '../../worker/errors';
import { VIT, maxAbsDiff, tempDir } from '../helpers';
import { hfDir, reference, runFeeds } from './helpers';

const ALL = [
  'vit-fmnist-s11',
  'vit-fmnist-s10-f16',
  'vit-tiny-rgb-bf16-sharded',
  'bert-tiny-cls-a',
  'bert-tiny-cls-f16-sharded',
  'bert-tiny-mlm',
  'bert-tiny-mlm-bf16',
];

for (const name of ALL) {
  test(`export(import(${name})) is byte-identical in every tensor and file`, async () => {
    const tmp = tempDir();
    const onnxFile = path.join(tmp, 'model.onnx');
    await engine.importHf({ model: hfDir(name), output: onnxFile });
    const out = path.join(tmp, 'out');
    const r = await exportHf({ model: onnxFile, like: hfDir(name), output: out });
    const a = readCheckpoint(hfDir(name));
    const b = readCheckpoint(out);
    assert.deepEqual([...b.tensors.keys()], [...a.tensors.keys()]);
    for (const [key, e] of a.tensors) {
      const f = b.tensors.get(key)!;
      assert.equal(f.dtype, e.dtype, key);
      assert.deepEqual(f.shape, e.shape, key);
      assert.ok(Buffer.compare(Buffer.from(f.bytes), Buffer.from(e.bytes)) === 0, `tensor ${key} differs`);
    }
    // Same header layout as the fixture writer, so whole files are identical too.
    for (const st of a.files) assert.ok(fs.readFileSync(st.file).equals(fs.readFileSync(path.join(out, path.basename(st.file)))), path.basename(st.file));
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')), a.rawConfig);
    assert.deepEqual(r.configChanges, {});
    for (const f of fs.readdirSync(hfDir(name))) assert.ok(fs.existsSync(path.join(out, f)), `${f} not carried over`);
    assert.ok(fs.readFileSync(path.join(out, 'README.md'), 'utf8').includes(a.config.architecture));
  });
}

test('a fused BERT exports to a folder that imports back with the fused logits (F32 exact, F16 within rounding)', async () => {
  const tmp = tempDir();
  const fused = path.join(tmp, 'fused.onnx');
  await engine.fuse({
    models: [hfDir('bert-tiny-cls-a'), hfDir('bert-tiny-cls-b')],
    recipe: { alignBy: 'wts', refit: 'none' },
    output: fused,
    runsDir: path.join(tmp, 'runs'),
    skipEval: true,
  });
  const ref = reference('bert-tiny-cls-a');
  const want = await runFeeds(loadModel(fused), ref.feeds);
  const parentA = await runFeeds(importHf(hfDir('bert-tiny-cls-a')), ref.feeds);
  assert.ok(maxAbsDiff(want, parentA) > 1e-4, 'the fused model should differ from its anchor');
  // Through the API: it gives the export the model card's lineage and run facts (worker/jobs/card.ts).
  await engine.exportHf({ model: fused, like: hfDir('bert-tiny-cls-a'), output: path.join(tmp, 'f32') });
  assert.ok(maxAbsDiff(await runFeeds(importHf(path.join(tmp, 'f32')), ref.feeds), want) <= 1e-6);
  // The same fused weights in the layout and dtype of a 3-shard F16 checkpoint of the same architecture.
  await exportHf({ model: fused, like: hfDir('bert-tiny-cls-f16-sharded'), output: path.join(tmp, 'f16') });
  const f16 = readCheckpoint(path.join(tmp, 'f16'));
  assert.equal(f16.files.length, 3);
  assert.ok([...f16.tensors.values()].every((e) => e.dtype === 'F16'));
  const d = maxAbsDiff(await runFeeds(importHf(path.join(tmp, 'f16')), ref.feeds), want);
  assert.ok(d > 0 && d < 5e-3, `F16 rounding changed the logits by ${d}`);
  // Outside its run folder the fused model still names its parents: the card reads the lineage in its metadata.
  const card = fs.readFileSync(path.join(tmp, 'f32', 'README.md'), 'utf8');
  assert.match(card, /## Parents[\s\S]*bert-tiny-cls-a` \(anchor[\s\S]*bert-tiny-cls-b/);
});

test('a PyTorch ONNX export of another width maps by graph role; config.json takes its widths', async () => {
  const tmp = tempDir();
  const out = path.join(tmp, 'vit72');
  const r = await exportHf({ model: path.join(VIT, 'vit72_s12.onnx'), like: hfDir('vit-fmnist-s11'), output: out });
  assert.deepEqual(r.configChanges, { hidden_size: [48, 72], intermediate_size: [192, 288] });
  const ref = reference('vit-fmnist-s11');
  const got = await runFeeds(importHf(out), ref.feeds);
  const want = await runFeeds(loadModel(path.join(VIT, 'vit72_s12.onnx')), ref.feeds);
  assert.ok(maxAbsDiff(got, want) <= 1e-5, String(maxAbsDiff(got, want)));
  const st = readCheckpoint(out);
  assert.deepEqual(st.tensors.get('vit.encoder.layer.0.intermediate.dense.weight')!.shape, [288, 72]);
});

test('export refuses an existing output without --force, a mismatched template, and leaves nothing behind', async () => {
  const tmp = tempDir();
  const out = path.join(tmp, 'out');
  await exportHf({ model: hfDir('bert-tiny-cls-a'), like: hfDir('bert-tiny-cls-a'), output: out });
  await assert.rejects(
    exportHf({ model: hfDir('bert-tiny-cls-b'), like: hfDir('bert-tiny-cls-a'), output: out }),
    (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_USAGE',
  );
  await exportHf({ model: hfDir('bert-tiny-cls-b'), like: hfDir('bert-tiny-cls-a'), output: out, force: true });
  const b = readCheckpoint(hfDir('bert-tiny-cls-b'));
  const replaced = readCheckpoint(out);
  assert.ok(Buffer.from(replaced.tensors.get('classifier.weight')!.bytes).equals(Buffer.from(b.tensors.get('classifier.weight')!.bytes)));
  const bad = path.join(tmp, 'bad');
  await assert.rejects(
    exportHf({ model: hfDir('bert-tiny-cls-a'), like: hfDir('vit-fmnist-s11'), output: bad }),
    (e: unknown) => e instanceof OtfuseError && e.code === 'MISMATCH',
  );
  assert.deepEqual(fs.readdirSync(tmp).sort(), ['out']);
});

test('an older checkpoint with the position_ids buffer imports, and the buffer comes back byte for byte', async () => {
  const tmp = tempDir();
  const dir = path.join(tmp, 'old-bert');
  fs.cpSync(hfDir('bert-tiny-cls-a'), dir, { recursive: true });
  const st = parseSafetensors(fs.readFileSync(path.join(dir, 'model.safetensors')), 'model.safetensors');
  const ids = new Uint8Array(BigInt64Array.from({ length: 32 }, (_, i) => BigInt(i)).buffer);
  const entries = [...st.entries, { key: 'bert.embeddings.position_ids', dtype: 'I64' as const, shape: [1, 32], bytes: ids }];
  fs.writeFileSync(path.join(dir, 'model.safetensors'), encodeSafetensorsRaw(entries, st.metadata));
  const ref = reference('bert-tiny-cls-a');
  assert.ok(maxAbsDiff(await runFeeds(importHf(dir), ref.feeds), ref.logits.data as Float32Array) <= 1e-5);
  await exportHf({ model: dir, like: dir, output: path.join(tmp, 'out') });
  assert.ok(fs.readFileSync(path.join(tmp, 'out', 'model.safetensors')).equals(fs.readFileSync(path.join(dir, 'model.safetensors'))));
});

test('heterogeneous: a 72-wide HF folder fused into the 48-wide anchor exports in the 72-wide layout with config widths 48', async () => {
  const tmp = tempDir();
  const wide = path.join(tmp, 'vit72-hf');
  await exportHf({ model: path.join(VIT, 'vit72_s12.onnx'), like: hfDir('vit-fmnist-s11'), output: wide });
  const fused = path.join(tmp, 'fused.onnx');
  await engine.fuse({
    models: [hfDir('vit-fmnist-s11'), wide],
    anchor: hfDir('vit-fmnist-s11'),
    data: path.join(VIT, 'calib200.npz'),
    output: fused,
    runsDir: path.join(tmp, 'runs'),
    skipEval: true,
    recipe: { samples: 50 },
  });
  const out = path.join(tmp, 'fused-hf');
  const r = await exportHf({ model: fused, like: wide, output: out });
  assert.deepEqual(r.configChanges, { hidden_size: [72, 48], intermediate_size: [288, 192] });
  const ref = reference('vit-fmnist-s11');
  const d = maxAbsDiff(await runFeeds(importHf(out), ref.feeds), await runFeeds(loadModel(fused), ref.feeds));
  assert.ok(d <= 1e-6, String(d));
});

test('a pre-training checkpoint loaded as BertForMaskedLM (pooler, next-sentence head, gamma/beta names) imports and exports unchanged', async () => {
  const tmp = tempDir();
  const dir = path.join(tmp, 'pretraining');
  fs.cpSync(hfDir('bert-tiny-mlm'), dir, { recursive: true });
  const f = path.join(dir, 'model.safetensors');
  const st = parseSafetensors(fs.readFileSync(f), f);
  const extra = (key: string, shape: number[]) => ({
    key,
    dtype: 'F32' as const,
    shape,
    bytes: new Uint8Array(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5).buffer),
  });
  const renamed = st.entries.map((e) => ({ ...e, key: e.key.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta') }));
  const entries = [
    ...renamed,
    extra('bert.pooler.dense.weight', [32, 32]),
    extra('bert.pooler.dense.bias', [32]),
    extra('cls.seq_relationship.weight', [2, 32]),
    extra('cls.seq_relationship.bias', [2]),
  ];
  fs.writeFileSync(f, encodeSafetensorsRaw(entries, st.metadata));
  const ref = reference('bert-tiny-mlm');
  const model = importHf(dir);
  assert.ok(model.hasInitializer('bert.embeddings.LayerNorm.gamma'));
  assert.ok(maxAbsDiff(await runFeeds(model, ref.feeds), ref.logits.data as Float32Array) <= 1e-5);
  await exportHf({ model: dir, like: dir, output: path.join(tmp, 'out') });
  assert.ok(fs.readFileSync(path.join(tmp, 'out', 'model.safetensors')).equals(fs.readFileSync(f)));
});
