import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { loadModel, parseModel, halfToFloat, floatToHalf, bf16ToFloat, floatToBf16, DataType } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { computeLogits } from '../../worker/runtime/logits';
import { VIT, tempDir, maxAbsDiff } from '../helpers';

const calib = () => openDataset(path.join(VIT, 'calib200.npz'));

for (const name of ['vit48_s10.onnx', 'vit72_s12.onnx', 'vit48_otfused_ref.onnx']) {
  test(`round trip of ${name} gives bit-identical logits`, async () => {
    const file = path.join(VIT, name);
    const dir = tempDir();
    const model = loadModel(file);
    const copy = path.join(dir, name);
    model.save(copy);
    const a = await computeLogits(loadModel(file), calib(), { limit: 64 });
    const b = await computeLogits(loadModel(copy), calib(), { limit: 64 });
    assert.equal(a.logits.length, 640);
    assert.deepEqual(Array.from(b.logits), Array.from(a.logits));
    // The written file holds no temp leftovers.
    assert.deepEqual(fs.readdirSync(dir), [name]);
  });
}

test('a known perturbation of the classifier bias shifts exactly that logit', async () => {
  const model = loadModel(path.join(VIT, 'vit48_s10.onnx'));
  const gemm = model.nodes.find((n) => n.opType === 'Gemm');
  assert.ok(gemm, 'fixture has a Gemm classifier');
  const biasName = gemm.input![2];
  const bias = model.getInitializer(biasName);
  assert.deepEqual(bias.dims, [10]);
  const before = await computeLogits(model, calib(), { limit: 32 });
  const perturbed = Float32Array.from(bias.data);
  perturbed[3] += 1.5;
  model.setInitializer(biasName, perturbed);
  const after = await computeLogits(model, calib(), { limit: 32 });
  for (let i = 0; i < 32; i++) {
    for (let c = 0; c < 10; c++) {
      const delta = after.logits[i * 10 + c] - before.logits[i * 10 + c];
      assert.ok(Math.abs(delta - (c === 3 ? 1.5 : 0)) < 1e-5, `sample ${i} class ${c}: delta ${delta}`);
    }
  }
  // Scaling the classifier weight by 2 doubles (logits − bias).
  const weightName = gemm.input![1];
  const w = model.getInitializer(weightName);
  model.setInitializer(
    weightName,
    w.data.map((v) => v * 2),
  );
  const doubled = await computeLogits(model, calib(), { limit: 32 });
  for (let i = 0; i < 32; i++) {
    for (let c = 0; c < 10; c++) {
      const expected = 2 * (after.logits[i * 10 + c] - perturbed[c]) + perturbed[c];
      assert.ok(Math.abs(doubled.logits[i * 10 + c] - expected) < 1e-4);
    }
  }
});

test('external data next to the model is read; a path escaping the folder is refused', () => {
  const dir = tempDir();
  const model = loadModel(path.join(VIT, 'vit48_s10.onnx'));
  const target = model.graph.initializer!.find((t) => (t.dims ?? []).length === 2)!;
  const original = model.getInitializer(target.name!).data;
  fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.concat([Buffer.alloc(16), Buffer.from(target.rawData!)]));
  target.externalData = [
    { key: 'location', value: 'weights.bin' },
    { key: 'offset', value: '16' },
    { key: 'length', value: String(target.rawData!.length) },
  ];
  target.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  target.rawData = new Uint8Array(0);
  const file = path.join(dir, 'external.onnx');
  fs.writeFileSync(file, onnx.ModelProto.encode(model.proto).finish());
  const loaded = loadModel(file);
  assert.deepEqual(Array.from(loaded.getInitializer(target.name!).data), Array.from(original));

  target.externalData = [{ key: 'location', value: '../weights.bin' }];
  const evil = path.join(dir, 'evil.onnx');
  fs.writeFileSync(evil, onnx.ModelProto.encode(model.proto).finish());
  assert.throws(
    () => loadModel(evil),
    (err: Error) => /escapes the model's folder/.test(err.message) && err.message.includes(evil) && err.message.includes(target.name!),
  );
});

test('fp16, bf16 and fp64 initializers are read as float32 and written back in their type', () => {
  const values = [0, 1, -2.5, 0.333251953125, 65504, 6.103515625e-5];
  for (const v of values) assert.equal(halfToFloat(floatToHalf(v)), v);
  assert.equal(bf16ToFloat(floatToBf16(1.5)), 1.5);
  assert.equal(bf16ToFloat(floatToBf16(-3.140625)), -3.140625);
  const model = loadModel(path.join(VIT, 'vit48_s10.onnx'));
  const [t16, tbf, t64] = model.graph.initializer!.filter((t) => (t.dims ?? []).length === 1).slice(0, 3);
  const f = (t: typeof t16) => model.getInitializer(t.name!).data;
  const orig = [f(t16), f(tbf), f(t64)];
  const convert = (t: typeof t16, type: number, enc: (x: number) => number, width: 2) => {
    const src = model.getInitializer(t.name!).data;
    const out = new Uint16Array(src.length);
    src.forEach((x, i) => {
      out[i] = enc(x);
    });
    t.dataType = type;
    t.rawData = new Uint8Array(out.buffer);
    void width;
  };
  convert(t16, DataType.FLOAT16, floatToHalf, 2);
  convert(tbf, DataType.BFLOAT16, floatToBf16, 2);
  t64.dataType = DataType.DOUBLE;
  t64.rawData = new Uint8Array(Float64Array.from(orig[2]).buffer);
  const reparsed = parseModel(onnx.ModelProto.encode(model.proto).finish(), 'mem.onnx');
  const g16 = reparsed.getInitializer(t16.name!).data;
  const gbf = reparsed.getInitializer(tbf.name!).data;
  assert.ok(maxAbsDiff(g16, orig[0]) <= 1e-3 * Math.max(1, ...Array.from(orig[0], Math.abs)));
  assert.ok(maxAbsDiff(gbf, orig[1]) <= 1e-2 * Math.max(1, ...Array.from(orig[1], Math.abs)));
  assert.deepEqual(Array.from(reparsed.getInitializer(t64.name!).data), Array.from(orig[2]));
  reparsed.setInitializer(t16.name!, g16);
  assert.equal(reparsed.graph.initializer!.find((t) => t.name === t16.name)!.dataType, DataType.FLOAT16);
  assert.deepEqual(Array.from(reparsed.getInitializer(t16.name!).data), Array.from(g16));
});

test('the summary lists inputs, outputs, parameters and ops', () => {
  const s = loadModel(path.join(VIT, 'vit48_s10.onnx')).summary();
  assert.equal(s.parameterCount, 88666);
  assert.equal(s.initializerCount, 56);
  assert.equal(s.nodeCount, 297);
  assert.deepEqual(s.inputs, [{ name: 'pixel_values', type: 'FLOAT', shape: ['batch', 1, 28, 28] }]);
  assert.deepEqual(s.outputs, [{ name: 'logits', type: 'FLOAT', shape: ['batch', 10] }]);
  assert.equal(s.opHistogram.MatMul, 24);
  assert.equal(s.opsets['ai.onnx'], 17);
});
