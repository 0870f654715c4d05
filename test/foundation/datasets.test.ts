import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { encodeNpz, readNpz, readNpy, encodeNpy, parseNpy } from '../../worker/data/npy';
import { readIdx } from '../../worker/data/idx';
import { openDataset, batches } from '../../worker/data/dataset';
import { EXAMPLES, VIT, tempDir } from '../helpers';

test('npz round trip keeps dtypes, shapes and values', () => {
  const dir = tempDir();
  const x = Float32Array.from({ length: 24 }, (_, i) => i / 7);
  const ids = BigInt64Array.from({ length: 6 }, (_, i) => BigInt(i * 1000));
  const file = path.join(dir, 'a.npz');
  fs.writeFileSync(file, encodeNpz({ x: { data: x, shape: [2, 3, 4] }, ids: { data: ids, shape: [6] } }));
  const back = readNpz(file);
  assert.deepEqual(back.x.shape, [2, 3, 4]);
  assert.equal(back.x.dtype, 'f4');
  assert.deepEqual(Array.from(back.x.data as Float32Array), Array.from(x));
  assert.equal(back.ids.dtype, 'i8');
  assert.deepEqual(Array.from(back.ids.data as BigInt64Array), Array.from(ids));
  fs.writeFileSync(path.join(dir, 'v.npy'), encodeNpy(Float64Array.from([1.5, -2]), [2]));
  assert.deepEqual(Array.from(readNpy(path.join(dir, 'v.npy')).data as Float64Array), [1.5, -2]);
});

test('numpy-written compressed npz (the fixtures) reads', () => {
  const calib = readNpz(path.join(VIT, 'calib200.npz'));
  assert.deepEqual(calib.x.shape, [200, 1, 28, 28]);
  assert.deepEqual(calib.y.shape, [200]);
});

test('truncated .npy data is reported with the file', () => {
  const bytes = encodeNpy(new Float32Array(100), [100]);
  assert.throws(() => parseNpy(bytes.subarray(0, bytes.length - 8), 'cut.npy'), /cut\.npy.*truncated/);
});

test('IDX subset: gzip and raw give the same images; preprocessing matches the formula', () => {
  const gz = path.join(EXAMPLES, 'data', 'fmnist-test-2k-images-idx3-ubyte.gz');
  const dir = tempDir();
  const raw = path.join(dir, 'images-idx3-ubyte');
  fs.writeFileSync(raw, zlib.gunzipSync(fs.readFileSync(gz)));
  const a = readIdx(gz);
  const b = readIdx(raw);
  assert.deepEqual(a.shape, [2000, 28, 28]);
  assert.deepEqual(Buffer.from(a.data).equals(Buffer.from(b.data)), true);
  const ds = openDataset(path.join(EXAMPLES, 'data', 'fmnist-test-2k.json'));
  assert.equal(ds.size, 2000);
  const batch = ds.take([7]);
  const px = a.data[7 * 784 + 400];
  assert.ok(Math.abs((batch.feeds.x.data as Float32Array)[400] - (px / 255 - 0.286) / 0.353) < 1e-6);
  // limit/offset windows.
  const win = openDataset({ path: path.join(EXAMPLES, 'data', 'fmnist-test-2k.json'), offset: 10, limit: 5 });
  assert.equal(win.size, 5);
  assert.equal(win.labels[0], ds.labels[10]);
  const all = [...batches(win, 2)];
  assert.deepEqual(
    all.map((x) => x.labels.length),
    [2, 2, 1],
  );
});

test('the bundled calibration images are the fixture ones', () => {
  const a = fs.readFileSync(path.join(EXAMPLES, 'calib200.npz'));
  const b = fs.readFileSync(path.join(VIT, 'calib200.npz'));
  assert.ok(a.equals(b));
});
