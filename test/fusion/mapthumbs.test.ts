// Thumbnails written with the maps (worker/fusion/mapthumbs.ts via MapStore.write): every float32 map larger than
// 96 on a side gets `thumb/<key>`, bit-identical to the block means the panel would compute from the map
// (extension/mapThread.ts blockMeans), whether the map was kept in memory or streamed from the spool in chunks; the
// maps themselves are unchanged; small maps and F16 files get none.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MapStore } from '../../worker/fusion/mapstore';
import { BlockMeans, THUMB_PREFIX, THUMB_SIDE } from '../../worker/fusion/mapthumbs';
import { decodeSafetensors } from '../../worker/fusion/safetensors';
import { blockMeans, THUMB_PREFIX as PANEL_PREFIX } from '../../extension/mapThread';
import { tempDir } from '../helpers';

function record(name: string, n: number, m: number, seed: number) {
  let s = seed;
  const plan = Float64Array.from({ length: n * m }, () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 ** 2);
  return { name, kind: 'mlp-fc1', map: { n, m, plan }, diagnostics: {} };
}

test("MapStore.write adds thumb/<key> for maps over 96 a side: the panel's block means exactly, in memory or spooled", () => {
  assert.equal(THUMB_PREFIX, PANEL_PREFIX);
  const records = [record('small', 40, 30, 1), record('wide', 50, 300, 2), record('big', 1000, 700, 3), record('square', 97, 97, 4)];
  for (const spoolAbove of [1 << 30, 100]) {
    const store = new MapStore('F32', spoolAbove);
    for (const r of records) store.add(1, r);
    const file = path.join(tempDir(), 'maps.safetensors');
    store.write(file, { format: 'otfuse-maps' });
    store.release();
    const { tensors } = decodeSafetensors(new Uint8Array(fs.readFileSync(file)));
    assert.deepEqual(
      Object.keys(tensors)
        .filter((k) => k.startsWith(THUMB_PREFIX))
        .sort(),
      ['thumb/m1/big', 'thumb/m1/square', 'thumb/m1/wide'],
    );
    for (const r of records) {
      const { n, m } = r.map;
      const map = tensors[`m1/${r.name}`];
      assert.deepEqual(map.shape, [n, m]);
      for (let k = 0; k < map.data.length; k += 97) assert.equal(map.data[k], Math.fround(r.map.plan[k] * n));
      const thumb = tensors[`${THUMB_PREFIX}m1/${r.name}`];
      if (n <= THUMB_SIDE && m <= THUMB_SIDE) {
        assert.equal(thumb, undefined);
        continue;
      }
      const want = blockMeans('t', n, m, Float32Array.from(map.data), THUMB_SIDE);
      assert.deepEqual(thumb.shape, [want.outRows, want.outCols]);
      assert.deepEqual([...thumb.data], [...want.data], `${r.name}, spool above ${spoolAbove}`);
    }
  }
  const f16 = new MapStore('F16');
  f16.add(1, record('big', 200, 200, 5));
  const file = path.join(tempDir(), 'maps16.safetensors');
  f16.write(file, { format: 'otfuse-maps' });
  f16.release();
  assert.deepEqual(Object.keys(decodeSafetensors(new Uint8Array(fs.readFileSync(file))).tensors), ['m1/big']);
});

test('BlockMeans takes the values in pieces of any length, and refuses a wrong count', () => {
  const n = 130;
  const m = 211;
  const data = Float32Array.from({ length: n * m }, (_, k) => Math.sin(k) + 1);
  const whole = new BlockMeans(n, m);
  whole.add(data);
  const pieces = new BlockMeans(n, m);
  for (let k = 0; k < data.length; k += 1237) pieces.add(data.subarray(k, k + 1237));
  assert.deepEqual([...pieces.result()], [...whole.result()]);
  assert.deepEqual([...whole.result()], [...blockMeans('t', n, m, data, THUMB_SIDE).data]);
  const short = new BlockMeans(n, m);
  short.add(data.subarray(1));
  assert.throws(() => short.result(), /fed 27429 values/);
});
