// loadModel's lazyWeights (issue 16): large initializers are read back from the model file on use instead of
// holding the file's bytes; values, encodings and clones are those of an eagerly loaded model, and a file that
// changes on disk while in use is an error naming it.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { isDeferred, LAZY_MIN_BYTES, loadModel } from '../../worker/onnx/model';
import { cloneForWeights, paramView } from '../../worker/onnx/params';
import { OtfuseError } from '../../worker/errors';
import { VIT, tempDir } from '../helpers';

function copyFixture(name = 'vit48_s10.onnx'): string {
  const file = path.join(tempDir(), name);
  fs.copyFileSync(path.join(VIT, name), file);
  return file;
}

test('lazy weights: same values and the same encoding as an eager load; only large tensors are deferred', () => {
  const file = copyFixture();
  const eager = loadModel(file);
  const lazy = loadModel(file, { lazyWeights: true });
  let deferredCount = 0;
  for (const t of lazy.graph.initializer ?? []) {
    const name = t.name ?? '';
    assert.deepEqual(Array.from(lazy.getInitializer(name).data), Array.from(eager.getInitializer(name).data), name);
    if (isDeferred(t)) {
      deferredCount++;
      assert.ok(t.rawData!.length >= LAZY_MIN_BYTES, `${name} is deferred but small`);
    } else {
      // What stays in memory owns its bytes: the file's buffer is not kept alive through a view.
      const raw = t.rawData;
      if (raw && raw.length) assert.ok(raw.buffer.byteLength <= 2 * raw.byteLength + 4096, `${name} is a view of a larger buffer`);
    }
  }
  assert.ok(deferredCount >= 6, `the fixture's MLP weights are deferred (got ${deferredCount})`);
  assert.deepEqual(Buffer.from(lazy.toBytes()), Buffer.from(eager.toBytes()));
  // paramView reads deferred tensors through its LRU and gives the stored values.
  const pv = paramView(lazy, 2);
  for (const t of lazy.graph.initializer ?? []) {
    const name = t.name ?? '';
    if (t.dataType === 1) assert.deepEqual(Array.from(pv.get(name).data), Array.from(eager.getInitializer(name).data), name);
  }
});

test('lazy weights: clones keep the bytes deferred; replacing a value makes it plain and leaves the source alone', () => {
  const file = copyFixture();
  const lazy = loadModel(file, { lazyWeights: true });
  const name = (lazy.graph.initializer ?? []).find((t) => isDeferred(t))!.name!;
  const original = Array.from(lazy.getInitializer(name).data);
  for (const copy of [lazy.clone(), cloneForWeights(lazy)]) {
    const t = (copy.graph.initializer ?? []).find((x) => x.name === name)!;
    assert.ok(isDeferred(t), 'a clone does not read the weights into memory');
    assert.deepEqual(Array.from(copy.getInitializer(name).data), original);
    const changed = new Float32Array(original.length).fill(0.5);
    copy.setInitializer(name, changed);
    assert.ok(!isDeferred(t), 'a replaced value is plain');
    assert.deepEqual(Array.from(copy.getInitializer(name).data), Array.from(changed));
    assert.deepEqual(Array.from(lazy.getInitializer(name).data), original, 'the source keeps its value');
  }
});

test('lazy weights: a model file changed on disk while in use is an error naming it, not wrong weights', () => {
  const file = copyFixture();
  const lazy = loadModel(file, { lazyWeights: true });
  const name = (lazy.graph.initializer ?? []).find((t) => isDeferred(t))!.name!;
  // Same size, other bytes, another modification time (as an editor or a second training run would leave it).
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 10] ^= 0xff;
  fs.writeFileSync(file, bytes);
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(file, later, later);
  assert.throws(
    () => lazy.getInitializer(name),
    (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_MODEL' && e.file === file && /changed on disk/.test(e.message) && e.message.includes(name),
  );
  // Replaced by another file (rename over it): also refused.
  const other = loadModel(copyFixture(), { lazyWeights: true });
  const otherFile = other.file;
  fs.copyFileSync(path.join(VIT, 'vit48_s11.onnx'), otherFile + '.new');
  fs.renameSync(otherFile + '.new', otherFile);
  assert.throws(() => other.toBytes(), /changed on disk/);
});

test('save writes the model piece by piece: the file decodes to the same message as toBytes (eager and lazy models)', () => {
  const file = copyFixture();
  const eager = loadModel(file);
  const lazy = loadModel(file, { lazyWeights: true });
  const dir = tempDir();
  for (const [which, model] of [
    ['eager', eager],
    ['lazy', lazy],
  ] as const) {
    const out = path.join(dir, `${which}.onnx`);
    model.save(out);
    const decoded = onnx.ModelProto.decode(fs.readFileSync(out));
    assert.deepEqual(Buffer.from(onnx.ModelProto.encode(decoded).finish()), Buffer.from(eager.toBytes()), which);
  }
  // A tensor stored without raw_data (typed values) and a model without initializers encode the same way too.
  const typed = loadModel(file);
  typed.graph.initializer!.push(onnx.TensorProto.create({ name: 'typed', dataType: 1, dims: [2], floatData: [1.5, -2] }));
  typed.save(path.join(dir, 'typed.onnx'));
  assert.deepEqual(
    Buffer.from(onnx.ModelProto.encode(onnx.ModelProto.decode(fs.readFileSync(path.join(dir, 'typed.onnx')))).finish()),
    Buffer.from(typed.toBytes()),
  );
  assert.deepEqual(fs.readdirSync(dir).sort(), ['eager.onnx', 'lazy.onnx', 'typed.onnx']);
});
