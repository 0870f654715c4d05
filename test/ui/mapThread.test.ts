// The panels' maps thread (extension/mapThread.ts): what it sends is what the host-side arithmetic gives (down-sampled
// block means, sort by match, top-k), as typed arrays; a repeated request is served from the cache without reading
// the file again; the cache stays under its byte bound; a bad file is an error naming it.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeSafetensors } from '../../worker/fusion/safetensors';
import { MapsFile } from '../../extension/safetensors';
import { orderedMap } from '../../extension/mapOrder';
import { PayloadCache, blockMeans, cache, preparedMap, type MapJob } from '../../extension/mapThread';
import { downsample } from '../../extension/safetensors';
import type { MapPayload } from '../../contracts/protocol';

/** A soft map with a shuffled diagonal (rows sum to 1), n × m. */
function softMap(n: number, m: number, seed: number): Float32Array {
  const data = new Float32Array(n * m);
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let j = 0; j < m; j++) sum += data[i * m + j] = rand() * 0.01;
    const j = (i * 7 + 3) % m;
    data[i * m + j] += 1;
    sum += 1;
    for (let c = 0; c < m; c++) data[i * m + c] /= sum;
  }
  return data;
}

function closeTo(a: ArrayLike<number>, b: ArrayLike<number>, rel: number, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let k = 0; k < a.length; k++) assert.ok(Math.abs(a[k] - b[k]) <= rel * Math.abs(b[k]) + 1e-30, `${what}[${k}]: ${a[k]} vs ${b[k]}`);
}

test('blockMeans = downsample to float32 rounding, on sizes that divide and that do not; an exact copy when it fits', () => {
  for (const [n, m, side] of [
    [3072, 3072, 96],
    [768, 768, 384],
    [300, 200, 64],
    [97, 61, 10],
    [10, 10, 16],
    [1, 7, 3],
  ]) {
    const data = softMap(n, m, n + m);
    const got = blockMeans('t', n, m, data, side);
    const want = downsample('t', n, m, data, side);
    assert.deepEqual([got.outRows, got.outCols], [want.outRows, want.outCols]);
    closeTo(got.data, want.data, 1e-5, `${n}×${m}→${side}`);
    assert.ok(Math.abs(got.max - want.max) <= 1e-5 * want.max && Math.abs(got.min - want.min) <= 1e-5 * Math.abs(want.min));
    if (n <= side && m <= side) assert.deepEqual([...got.data], [...data]);
  }
  // A permutation map keeps its mass on the diagonal blocks (3072 → 96: 32×32 blocks).
  const n = 3072;
  const perm = new Float32Array(n * n);
  for (let i = 0; i < n; i++) perm[i * n + i] = 1;
  const big = blockMeans('p', n, n, perm, 96);
  for (let i = 0; i < 96; i++) for (let j = 0; j < 96; j++) assert.equal(big.data[i * 96 + j], i === j ? 1 / 32 : 0);
});

function mapsFile(maps: Record<string, { shape: [number, number]; data: Float32Array }>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-mapthread-'));
  const file = path.join(dir, 'maps.safetensors');
  fs.writeFileSync(file, encodeSafetensors(maps, { format: 'otfuse-maps' }));
  return file;
}

function job(file: string, tensor: string, maxSide: number, options: { sort?: boolean; top?: number } = {}): MapJob {
  const t = MapsFile.open(file).target(tensor);
  return { file, ...t, tensor, maxSide, ...options };
}

test('the thread sends what the host-side arithmetic gives: block means, sorted rows, top-k (typed arrays)', async () => {
  const a = softMap(300, 200, 1);
  const file = mapsFile({ 'm1/a': { shape: [300, 200], data: a } });
  for (const options of [{}, { top: 3 }, { sort: true, top: 3 }, { sort: true }]) {
    const got = await preparedMap(job(file, 'm1/a', 64, options), 'now');
    const want = orderedMap('m1/a', { rows: 300, cols: 200, data: a }, 64, options);
    assert.equal(got.outRows, 64);
    assert.equal(got.outCols, 64);
    // Block means summed in float64 (blockMeans) vs one float32 addition per entry (downsample): rounding apart.
    closeTo(got.data, want.data, 1e-5, JSON.stringify(options));
    closeTo([got.min, got.max], [want.min, want.max], 1e-5, 'min, max');
    assert.ok(got.data instanceof Float32Array);
    if ('sort' in options) {
      assert.ok(got.rowOrder instanceof Int32Array);
      assert.deepEqual(Array.from(got.rowOrder!), Array.from(want.rowOrder!));
    } else assert.equal(got.rowOrder, undefined);
    if ('top' in options) {
      assert.ok(got.top!.cols instanceof Int32Array && got.top!.mass instanceof Float64Array);
      assert.equal(got.top!.k, 3);
      assert.deepEqual(Array.from(got.top!.cols), Array.from(want.top!.cols));
      assert.deepEqual(Array.from(got.top!.mass), Array.from(want.top!.mass));
      // Row i's best column is the one its diagonal was put on, with most of its mass.
      assert.equal(got.top!.cols[3 * 5], (5 * 7 + 3) % 200);
      assert.ok(got.top!.mass[3 * 5] > 0.4);
    } else assert.equal(got.top, undefined);
  }
});

test('a repeated request comes from the cache (the same payload); the file rewritten is read again', async () => {
  const file = mapsFile({ 'm1/b': { shape: [96, 96], data: softMap(96, 96, 2) } });
  const j = job(file, 'm1/b', 32, { top: 3 });
  const first = await preparedMap(j, 'background');
  const before = cache.bytes;
  assert.ok(before >= 32 * 32 * 4);
  const again = await preparedMap(j, 'now');
  assert.equal(again, first);
  // Same path, new content (size and mtime differ): read again.
  fs.writeFileSync(file, encodeSafetensors({ 'm1/b': { shape: [48, 48], data: softMap(48, 48, 3) } }, { format: 'otfuse-maps' }));
  const fresh = await preparedMap(job(file, 'm1/b', 32, { top: 3 }), 'now');
  assert.notEqual(fresh, first);
  assert.equal(fresh.rows, 48);
});

test('a truncated file is an error naming the tensor; nothing is cached for it', async () => {
  const file = mapsFile({ 'm1/c': { shape: [64, 64], data: softMap(64, 64, 4) } });
  const j = job(file, 'm1/c', 16);
  fs.truncateSync(file, fs.statSync(file).size - 100);
  await assert.rejects(preparedMap(j, 'now'), /m1\/c' is truncated/);
  fs.rmSync(file);
  await assert.rejects(preparedMap(j, 'now'), /ENOENT/);
});

test('the cache keeps the most recently used payloads under its byte bound', async () => {
  const c = new PayloadCache(3 * 1100);
  const payload = (n: number): MapPayload => ({ tensor: `t${n}`, rows: 16, cols: 16, outRows: 16, outCols: 16, data: new Float32Array(211), min: 0, max: 1 });
  for (let n = 0; n < 3; n++) await c.add(`k${n}`, Promise.resolve(payload(n)));
  assert.ok(c.get('k0')); // k0 used: k1 is now the oldest
  await c.add('k3', Promise.resolve(payload(3)));
  await new Promise((r) => setImmediate(r));
  assert.equal(c.get('k1'), undefined);
  for (const k of ['k0', 'k2', 'k3']) assert.ok(c.get(k), k);
  assert.ok(c.bytes <= 3 * 1100, `${c.bytes}`);
  await assert.rejects(c.add('bad', Promise.reject(new Error('no'))));
  assert.equal(c.get('bad'), undefined);
});

test('background reads wait while the user waits: a map asked for now is answered before queued thumbnails', async () => {
  const file = mapsFile({ 'm1/d': { shape: [512, 512], data: softMap(512, 512, 5) } });
  const order: string[] = [];
  const track = (name: string, p: Promise<MapPayload>) => p.then(() => order.push(name));
  const jobs = [8, 9, 10, 11].map((side) => track(`background ${side}`, preparedMap(job(file, 'm1/d', side), 'background')));
  const now = track('now', preparedMap(job(file, 'm1/d', 64, { top: 3 }), 'now'));
  await Promise.all([...jobs, now]);
  // The first background read may already run; the ones queued behind it start only after the one asked for now.
  assert.ok(order.indexOf('now') <= 1, order.join(', '));
  assert.deepEqual(
    order.filter((o) => o !== 'now'),
    ['background 8', 'background 9', 'background 10', 'background 11'],
  );
});
