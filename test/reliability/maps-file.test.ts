// Issue 15.8: a hostile maps.safetensors cannot freeze the extension host: offsets and shapes are checked against
// the file before allocating, and reading + down-sampling run on a worker thread.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { encodeSafetensors } from '../../worker/fusion/safetensors';
import { MapsFile } from '../../extension/safetensors';
import { blockMeans, preparedMap } from '../../extension/mapThread';
import { tempDir } from '../helpers';

function stFile(header: object, dataBytes = 0): string {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const file = path.join(tempDir(), 'maps.safetensors');
  fs.writeFileSync(file, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
  return file;
}

test('a tiny file declaring a [20000, 20000] map is refused at open, without allocating or blocking', () => {
  const n = 20000;
  const file = stFile({ 'm1/x': { dtype: 'F32', shape: [n, n], data_offsets: [0, n * n * 4] } });
  assert.ok(fs.statSync(file).size < 300);
  const t0 = performance.now();
  const before = process.memoryUsage().rss;
  assert.throws(() => MapsFile.open(file), /lies past the end of the file/);
  assert.ok(performance.now() - t0 < 200, `${performance.now() - t0} ms`);
  assert.ok(process.memoryUsage().rss - before < 100 * 2 ** 20);
});

test('bad shapes, offsets and byte counts are refused naming the tensor', () => {
  const cases: [object, RegExp][] = [
    [{ t: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, /invalid shape/],
    [{ t: { dtype: 'F32', shape: [2, 2], data_offsets: [8, 0] } }, /invalid data_offsets/],
    [{ t: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, /has 12 bytes for shape/],
    [{ t: { dtype: 'F32', shape: [2, 2, 2], data_offsets: [0, 32] } }, /invalid shape/],
    [{ t: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 1e300] } }, /invalid data_offsets/],
  ];
  for (const [header, expected] of cases)
    assert.throws(
      () => MapsFile.open(stFile(header, 64)),
      (e: Error) => expected.test(e.message) && /tensor 't'/.test(e.message),
      JSON.stringify(header),
    );
});

test('down-sampling runs on a worker thread with the same result; the main thread keeps ticking', async () => {
  const n = 4096;
  const data = new Float32Array(n * n);
  for (let i = 0; i < n; i++) data[i * n + ((i * 7) % n)] = 1;
  const file = path.join(tempDir(), 'maps.safetensors');
  fs.writeFileSync(file, encodeSafetensors({ 'm1/p': { shape: [n, n], data } }, { format: 'otfuse-maps' }));
  const maps = MapsFile.open(file);
  let ticks = 0;
  let maxGap = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, 5);
  const t0 = performance.now();
  const { rows, cols, position } = maps.target('m1/p');
  const off = await preparedMap({ file, position, rows, cols, tensor: 'm1/p', maxSide: 384 }, 'now');
  const elapsed = performance.now() - t0;
  clearInterval(timer);
  const on = blockMeans('m1/p', n, n, data, 384);
  assert.equal(off.outRows, 384);
  assert.deepEqual(Array.from(off.data), Array.from(on.data));
  assert.equal(off.max, on.max);
  // The main thread was never blocked for the duration of the work.
  assert.ok(ticks >= 1 && maxGap < Math.max(60, elapsed * 0.8), `max gap ${maxGap.toFixed(0)} ms of ${elapsed.toFixed(0)} ms`);
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
});
