// Issue 15.2: datasets are streamed. A 1 GB (≈1 MB compressed) .npz evaluates with peak RSS < 700 MiB; a gzip
// IDX declaring 784 MB evaluates with --limit 100 without inflating it; a .npz that is a device is refused;
// a shuffled read order over a large deflated member gives the same rows as the sequential order.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { openDataset } from '../../worker/data/dataset';
import { OtfuseError } from '../../worker/errors';
import { tempDir } from '../helpers';
import { hasStackTrace, runCliWatched, wideModel, writeDeflatedNpz } from './helpers';

const WIDTH = 256 * 1024; // 1 MiB of float32 per sample

test('otfuse eval on a 1 GB (≈1 MB compressed) .npz stays under 700 MiB peak RSS', async (t) => {
  const dir = tempDir();
  const n = 1024;
  const model = path.join(dir, 'wide.onnx');
  wideModel(model, WIDTH);
  const file = path.join(dir, 'big.npz');
  // Sample i is filled with (i % 7) / 7: every batch differs, and compression stays ≈1000:1.
  await writeDeflatedNpz(file, [
    {
      name: 'x',
      descr: '<f4',
      shape: [n, WIDTH],
      chunks: function* () {
        for (let i = 0; i < n; i++) yield new Uint8Array(new Float32Array(WIDTH).fill((i % 7) / 7).buffer);
      },
    },
    {
      name: 'y',
      descr: '<i8',
      shape: [n],
      chunks: function* () {
        yield new Uint8Array(BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 10)).buffer);
      },
    },
  ]);
  const compressed = fs.statSync(file).size;
  assert.ok(compressed < 8 * 2 ** 20, `test file is ${compressed} bytes compressed`);
  const r = runCliWatched(['eval', model, '--data', file, '--batch-size', '16', '--provider', 'cpu', '--json'], { timeoutMs: 300_000 });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.samples, n);
  // Logits are m·w + b with m = (i % 7) / 7: argmax is class 6 (w = 3) for m > 0 … and class 9 (b = 0.5) for m = 0.
  const expected = Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 9 : 6)).filter((c, i) => c === i % 10).length / n;
  assert.ok(Math.abs(out.accuracy - expected) < 1e-9, `accuracy ${out.accuracy} vs ${expected}`);
  t.diagnostic(`peak RSS ${r.peakRssMiB.toFixed(0)} MiB for ${n} samples of ${WIDTH * 4} bytes (${(compressed / 2 ** 20).toFixed(2)} MiB compressed)`);
  assert.ok(r.peakRssMiB < 700, `peak RSS ${r.peakRssMiB.toFixed(0)} MiB`);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a gzip IDX declaring 784 MB is not inflated whole for eval --limit 100', async (t) => {
  const dir = tempDir();
  const n = 1_000_000;
  const head = Buffer.alloc(16);
  head.writeUInt32BE(0x00000803, 0);
  head.writeUInt32BE(n, 4);
  head.writeUInt32BE(28, 8);
  head.writeUInt32BE(28, 12);
  const images = path.join(dir, 'images-idx3-ubyte.gz');
  const gz = zlib.createGzip();
  const sink = fs.createWriteStream(images);
  gz.pipe(sink);
  const closed = new Promise<void>((resolve, reject) => {
    sink.on('close', resolve);
    sink.on('error', reject);
  });
  const put = (b: Buffer) =>
    new Promise<void>((resolve) => {
      if (gz.write(b)) resolve();
      else gz.once('drain', resolve);
    });
  await put(head);
  const zeros = Buffer.alloc(8 * 2 ** 20);
  for (let left = n * 784; left > 0; left -= zeros.length) await put(left >= zeros.length ? zeros : zeros.subarray(0, left));
  gz.end();
  await closed;
  const labels = path.join(dir, 'labels-idx1-ubyte');
  const lab = Buffer.alloc(8 + n);
  lab.writeUInt32BE(0x00000801, 0);
  lab.writeUInt32BE(n, 4);
  fs.writeFileSync(labels, lab);
  const model = path.join(dir, 'wide784.onnx');
  wideModel(model, [1, 28, 28]);
  const r = runCliWatched(['eval', model, '--data', images, '--labels', labels, '--mean', '0', '--std', '1', '--limit', '100', '--provider', 'cpu', '--json'], {
    timeoutMs: 120_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).samples, 100);
  t.diagnostic(`peak RSS ${r.peakRssMiB.toFixed(0)} MiB`);
  assert.ok(r.peakRssMiB < 400, `peak RSS ${r.peakRssMiB.toFixed(0)} MiB`);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a .npz that is a device or FIFO is refused; a truncated deflated member is BAD_DATA naming the file', async () => {
  const dir = tempDir();
  fs.symlinkSync('/dev/zero', path.join(dir, 'zero.npz'));
  assert.throws(
    () => openDataset(path.join(dir, 'zero.npz')),
    (e: OtfuseError) => e.code === 'BAD_DATA' && /device/.test(e.message),
  );
  const model = path.join(dir, 'wide.onnx');
  wideModel(model, 16);
  const r = runCliWatched(['eval', model, '--data', path.join(dir, 'zero.npz'), '--provider', 'cpu'], { timeoutMs: 30_000 });
  assert.equal(r.code, 1, r.stderr);
  assert.ok(r.peakRssMiB < 400, `peak ${r.peakRssMiB} MiB`);
  assert.equal(hasStackTrace(r.stderr), false);
  // A member whose header declares far more than its stream holds.
  const file = path.join(dir, 'short.npz');
  await writeDeflatedNpz(file, [
    {
      name: 'x',
      descr: '<f4',
      shape: [30000, 30000],
      chunks: function* () {
        yield new Uint8Array(4096);
      },
    },
    {
      name: 'y',
      descr: '<i8',
      shape: [30000],
      chunks: function* () {
        yield new Uint8Array(30000 * 8);
      },
    },
  ]);
  const before = process.memoryUsage().rss;
  assert.throws(
    () => openDataset(file),
    (e: OtfuseError) => e.code === 'BAD_DATA' && e.message.includes(file) && /truncated/.test(e.message),
  );
  assert.ok(process.memoryUsage().rss - before < 256 * 2 ** 20);
});

test('shuffled reads of a large deflated member (spilled to a temp file) match sequential reads', async () => {
  const dir = tempDir();
  const n = 300;
  const width = 64 * 1024; // 256 KiB per sample, 75 MiB in all: above the in-memory spill size
  const file = path.join(dir, 'mid.npz');
  await writeDeflatedNpz(file, [
    {
      name: 'x',
      descr: '<f4',
      shape: [n, width],
      chunks: function* () {
        for (let i = 0; i < n; i++) yield new Uint8Array(new Float32Array(width).fill(i).buffer);
      },
    },
    {
      name: 'y',
      descr: '<i8',
      shape: [n],
      chunks: function* () {
        yield new Uint8Array(BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 10)).buffer);
      },
    },
  ]);
  const ds = openDataset(file);
  const seq = ds.take(Int32Array.from([0, 1, 2]));
  assert.deepEqual(
    [0, 1, 2].map((b) => (seq.feeds.x.data as Float32Array)[b * width + 5]),
    [0, 1, 2],
  );
  const order = Int32Array.from([299, 3, 150, 0, 42]);
  const shuffled = ds.take(order);
  assert.deepEqual(
    Array.from(order, (_, b) => (shuffled.feeds.x.data as Float32Array)[b * width + width - 1]),
    Array.from(order),
  );
  assert.deepEqual(
    Array.from(shuffled.labels),
    Array.from(order, (i) => i % 10),
  );
  ds.close();
});

test('labels that are fractional, huge or NaN are a data error, not silently cast', async () => {
  const dir = tempDir();
  const cases: [string, string, Uint8Array][] = [
    ['fractional', '<f8', new Uint8Array(Float64Array.from([0, 1.5, 2]).buffer)],
    ['nan', '<f4', new Uint8Array(Float32Array.from([0, NaN, 2]).buffer)],
    ['huge', '<i8', new Uint8Array(BigInt64Array.from([0n, 2n ** 40n, 1n]).buffer)],
    ['negative', '<i8', new Uint8Array(BigInt64Array.from([0n, -1n, 1n]).buffer)],
  ];
  for (const [name, descr, y] of cases) {
    const file = path.join(dir, `${name}.npz`);
    await writeDeflatedNpz(file, [
      {
        name: 'x',
        descr: '<f4',
        shape: [3, 4],
        chunks: function* () {
          yield new Uint8Array(48);
        },
      },
      {
        name: 'y',
        descr,
        shape: [3],
        chunks: function* () {
          yield y;
        },
      },
    ]);
    assert.throws(
      () => openDataset(file),
      (e: OtfuseError) => e.code === 'BAD_DATA' && /sample 1/.test(e.message) && /not a class index/.test(e.message),
      name,
    );
  }
});
