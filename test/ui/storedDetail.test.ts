// Detail maps stored at fuse time (worker/fusion/mapdetail.ts via MapStore.write) and read by the panel
// (extension/storedDetail.ts): for every float32 map larger than 384 on a side, what the panel reads from the file is
// exactly what its maps thread computes from the full map (block means, min, max, top-3 columns and shares), whether
// the map was kept in memory or streamed from the spool; a file written before (no stored details) gives none and
// the thread's path still works; the header cache sees a file rewritten.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MapStore } from '../../worker/fusion/mapstore';
import { DETAIL_PREFIX, DETAIL_SIDE, TOP_K, TOP_MASS_PREFIX, TOP_PREFIX, TopMatchesStream } from '../../worker/fusion/mapdetail';
import { decodeSafetensors, encodeSafetensors } from '../../worker/fusion/safetensors';
import { MapsFile, clearHeaderCache } from '../../extension/safetensors';
import { preparedMap } from '../../extension/mapThread';
import { topMatches } from '../../extension/mapOrder';
import * as panel from '../../extension/storedDetail';
import { readStoredDetail, storedDetailOf } from '../../extension/storedDetail';
import { tempDir } from '../helpers';

/** A soft map n·P with a few exact zeros and one all-zero row (its top-3 are −1), rows otherwise summing to 1. */
function record(name: string, n: number, m: number, seed: number) {
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const plan = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    if (i === 1) continue;
    for (let j = 0; j < m; j++) plan[i * m + j] = rand() < 0.05 ? 0 : rand() / (m * n);
    plan[i * m + ((i * 7) % m)] += 1 / (2 * n);
  }
  return { name, kind: 'mlp-fc1', map: { n, m, plan }, diagnostics: {} };
}

const RECORDS = [record('big', 1000, 700, 1), record('wide', 50, 500, 2), record('tall', 401, 2, 3), record('mid', 300, 384, 4), record('small', 40, 30, 5)];

function writeStore(spoolAbove: number): string {
  const store = new MapStore('F32', spoolAbove);
  for (const r of RECORDS) store.add(1, r);
  const file = path.join(tempDir(), 'maps.safetensors');
  store.write(file, { format: 'otfuse-maps' });
  store.release();
  return file;
}

test("the tensor-name prefixes the engine stores are the panel's", () => {
  assert.deepEqual([panel.DETAIL_PREFIX, panel.TOP_PREFIX, panel.TOP_MASS_PREFIX], [DETAIL_PREFIX, TOP_PREFIX, TOP_MASS_PREFIX]);
});

test("stored details and top-3 are the maps thread's own result, exactly (in memory and spooled)", async () => {
  for (const spoolAbove of [1 << 30, 100]) {
    const file = writeStore(spoolAbove);
    const maps = MapsFile.cached(file);
    const keys = Object.keys(maps.header).sort();
    assert.deepEqual(
      keys.filter((k) => k.startsWith(DETAIL_PREFIX)),
      ['detail/m1/big', 'detail/m1/tall', 'detail/m1/wide'],
    );
    // One contiguous data section (safetensors readers check it): offsets sorted by start leave no gap.
    const ranges = keys.map((k) => maps.header[k].data_offsets).sort((a, b) => a[0] - b[0]);
    ranges.forEach((r, i) => assert.equal(r[0], i ? ranges[i - 1][1] : 0));
    // The maps themselves are unchanged, and other readers still decode the file (I32 top columns included).
    const { tensors } = decodeSafetensors(new Uint8Array(fs.readFileSync(file)));
    for (const r of RECORDS) {
      const tensor = `m1/${r.name}`;
      const { n, m } = r.map;
      assert.equal(tensors[tensor].data[5 * m], Math.fround(r.map.plan[5 * m] * n));
      const stored = await readStoredDetail(file, tensor, DETAIL_SIDE, TOP_K);
      if (n <= DETAIL_SIDE && m <= DETAIL_SIDE) {
        assert.equal(stored, undefined, `${r.name} has no stored detail`);
        continue;
      }
      assert.ok(stored, `${r.name}: stored detail`);
      const { position } = maps.target(tensor);
      const computed = await preparedMap({ file, position, rows: n, cols: m, tensor, maxSide: DETAIL_SIDE, top: TOP_K }, 'now');
      const what = `${r.name}, spool above ${spoolAbove}`;
      assert.deepEqual([stored.rows, stored.cols, stored.outRows, stored.outCols], [computed.rows, computed.cols, computed.outRows, computed.outCols], what);
      assert.deepEqual(stored.data, computed.data, what);
      assert.equal(stored.min, computed.min, what);
      assert.equal(stored.max, computed.max, what);
      assert.equal(stored.top!.k, computed.top!.k, what);
      assert.deepEqual(Array.from(stored.top!.cols), Array.from(computed.top!.cols), what);
      assert.deepEqual(Array.from(stored.top!.mass), Array.from(computed.top!.mass), what);
      const k = stored.top!.k;
      assert.deepEqual(Array.from(stored.top!.cols).slice(k, 2 * k), new Array(k).fill(-1), `${what}: the zero row`);
      assert.ok(stored.data instanceof Float32Array && stored.top!.cols instanceof Int32Array && stored.top!.mass instanceof Float64Array);
      // Another size or k is not served from the stored one.
      assert.equal(await readStoredDetail(file, tensor, 256, TOP_K), undefined);
      if (m > 3) assert.equal(await readStoredDetail(file, tensor, DETAIL_SIDE, 5), undefined);
      const noTop = await readStoredDetail(file, tensor, DETAIL_SIDE, 0);
      assert.deepEqual(noTop?.data, computed.data);
      assert.equal(noTop?.top, undefined);
    }
  }
});

test('a maps file written before stored details gives none; the thread computes the map as before', async () => {
  const data = Float32Array.from({ length: 500 * 450 }, (_, k) => ((k * 2654435761) % 1000) / 1000);
  const file = path.join(tempDir(), 'maps.safetensors');
  fs.writeFileSync(file, encodeSafetensors({ 'm1/old': { shape: [500, 450], data } }, { format: 'otfuse-maps' }));
  const maps = MapsFile.cached(file);
  assert.equal(storedDetailOf(maps, 'm1/old', DETAIL_SIDE, TOP_K), undefined);
  assert.equal(await readStoredDetail(file, 'm1/old', DETAIL_SIDE, TOP_K), undefined);
  const { position } = maps.target('m1/old');
  const p = await preparedMap({ file, position, rows: 500, cols: 450, tensor: 'm1/old', maxSide: DETAIL_SIDE, top: TOP_K }, 'now');
  assert.deepEqual([p.outRows, p.outCols], [384, 384]);
  const t = topMatches(500, 450, data, TOP_K);
  assert.deepEqual(Array.from(p.top!.cols), t.cols);
});

test('the header cache: the same header while the file is unchanged; a file renamed over it or rewritten is read again', async () => {
  clearHeaderCache();
  const file = writeStore(1 << 30);
  const first = MapsFile.cached(file);
  assert.equal(MapsFile.cached(file), first);
  const before = await readStoredDetail(file, 'm1/big', DETAIL_SIDE, TOP_K);
  // Another run written to a temp file and renamed over this one (as fuse writes): other maps, other header.
  const store = new MapStore('F32');
  store.add(1, record('big', 1000, 700, 99));
  store.add(1, record('extra', 10, 10, 7));
  const tmp = `${file}.tmp`;
  store.write(tmp, { format: 'otfuse-maps' });
  store.release();
  fs.renameSync(tmp, file);
  const second = MapsFile.cached(file);
  assert.notEqual(second, first);
  assert.ok(second.header['m1/extra'] && !first.header['m1/extra']);
  const after = await readStoredDetail(file, 'm1/big', DETAIL_SIDE, TOP_K);
  assert.notDeepEqual(after!.data, before!.data);
  // Rewritten in place, same size: the modification time (or ctime) differs, so the header is read again.
  const bytes = fs.readFileSync(file);
  fs.writeFileSync(file, bytes);
  const future = new Date(Date.now() + 5000);
  fs.utimesSync(file, future, future);
  assert.notEqual(MapsFile.cached(file), second);
});

test('TopMatchesStream takes the values in pieces of any length, and refuses a wrong count', () => {
  const n = 37;
  const m = 411;
  const data = Float32Array.from({ length: n * m }, (_, k) => (k % 97 === 0 ? 0 : k % 13 === 0 ? -1 : Math.abs(Math.sin(k))));
  const want = topMatches(n, m, data, 3);
  for (const piece of [1, 410, 412, 5000, n * m]) {
    const s = new TopMatchesStream(n, m);
    for (let k = 0; k < data.length; k += piece) s.add(data.subarray(k, k + piece));
    const got = s.result();
    assert.deepEqual([...got.cols], want.cols, `pieces of ${piece}`);
    assert.deepEqual([...got.mass], want.mass, `pieces of ${piece}`);
  }
  const short = new TopMatchesStream(n, m);
  short.add(data.subarray(1));
  assert.throws(() => short.result(), /fed 15206 values/);
});
