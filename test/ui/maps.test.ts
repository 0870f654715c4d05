// The extension's side of the maps file and the heatmap arithmetic (node:test; the browser UI test is
// scripts/e2e/ui.mjs): the reader reads what the engine writes, down-sampling keeps block means, and the hover
// read-out maps a canvas position back to the full map's indices.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeSafetensors } from '../../worker/fusion/safetensors';
import { MapsFile, downsample, parseHeader } from '../../extension/safetensors';
import { cellAt, colour, describeCell, describeThumbnailCell } from '../../webview/mapMath';

function tmpFile(bytes: Uint8Array): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-maps-'));
  const file = path.join(dir, 'maps.safetensors');
  fs.writeFileSync(file, bytes);
  return file;
}

test('MapsFile reads the tensors the engine writes (keys, shapes, values), one at a time', () => {
  const a = Float32Array.from({ length: 6 }, (_, i) => i / 7);
  const b = Float32Array.from({ length: 12 }, (_, i) => (i % 5) - 2.5);
  const file = tmpFile(
    encodeSafetensors({ 'm1/blocks.0.mlp.fc1': { shape: [2, 3], data: a }, 'm1/embed.cls': { shape: [4, 3], data: b } }, { format: 'otfuse-maps' }),
  );
  const maps = MapsFile.open(file);
  assert.deepEqual(Object.keys(maps.header).sort(), ['m1/blocks.0.mlp.fc1', 'm1/embed.cls']);
  const ra = maps.read('m1/blocks.0.mlp.fc1');
  assert.equal(ra.rows, 2);
  assert.equal(ra.cols, 3);
  assert.deepEqual([...ra.data], [...a]);
  const rb = maps.read('m1/embed.cls');
  assert.deepEqual([...rb.data], [...b]);
  assert.throws(() => maps.read('nope'), /no tensor 'nope'/);
});

test('a truncated or foreign file is a clear error', () => {
  assert.throws(() => parseHeader(new Uint8Array(4)), /too short/);
  const bad = new Uint8Array(16);
  new DataView(bad.buffer).setBigUint64(0, 1000n, true);
  assert.throws(() => parseHeader(bad), /does not fit/);
  assert.throws(() => MapsFile.open(tmpFile(bad)), /does not fit the file/);
});

test('downsample: exact copy when it fits, block means otherwise (3072×3072 → 384×384)', () => {
  const small = downsample('t', 2, 2, Float32Array.from([1, 2, 3, 4]), 8);
  assert.equal(small.outRows, 2);
  assert.deepEqual([...small.data], [1, 2, 3, 4]);
  assert.equal(small.min, 1);
  assert.equal(small.max, 4);
  // 4×4 → 2×2: each output is the mean of a 2×2 block.
  const m = Float32Array.from([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  const d = downsample('t', 4, 4, m, 2);
  assert.deepEqual([...d.data], [1, 2, 3, 4]);
  // A permutation map keeps its total mass and a visible diagonal after down-sampling.
  const n = 3072;
  const perm = new Float32Array(n * n);
  for (let i = 0; i < n; i++) perm[i * n + i] = 1;
  const big = downsample('p', n, n, perm, 384);
  assert.equal(big.outRows, 384);
  assert.equal(big.outCols, 384);
  let diag = 0,
    off = 0;
  for (let i = 0; i < 384; i++)
    for (let j = 0; j < 384; j++) {
      if (i === j) diag += big.data[i * 384 + j];
      else off += big.data[i * 384 + j];
    }
  assert.ok(Math.abs(diag * 64 - n) < 1e-3, `mass ${diag * 64}`);
  assert.equal(off, 0);
});

test('hover read-out: canvas position → index ranges of the full map and the value', () => {
  const map = downsample(
    't',
    8,
    4,
    Float32Array.from({ length: 32 }, (_, k) => k),
    2,
  );
  const canvas = { left: 10, top: 20, width: 100, height: 200 };
  const c = cellAt(canvas, map, 10 + 75, 20 + 10);
  assert.deepEqual({ i0: c.i0, i1: c.i1, j0: c.j0, j1: c.j1 }, { i0: 0, i1: 3, j0: 2, j1: 3 });
  assert.equal(describeCell(c), `i 0–3, j 2–3: mean ${c.value.toFixed(4)}`);
  const exact = downsample('t', 2, 2, Float32Array.from([0.5, 0, 0, 0.5]), 8);
  assert.equal(describeCell(cellAt(canvas, exact, 10 + 99, 20 + 199)), 'i 1, j 1: 0.5000');
});

test('hover over a thumbnail standing in for the detail: the block mean, labelled as a thumbnail, never as exact', () => {
  // An 8×8 map's 2×2 thumbnail: each cell the mean of a 4×4 block.
  const full = Float32Array.from({ length: 64 }, (_, k) => k);
  const thumb = downsample('t', 8, 8, full, 2);
  const canvas = { left: 0, top: 0, width: 100, height: 100 };
  const c = cellAt(canvas, thumb, 75, 10);
  let sum = 0;
  for (let i = 0; i < 4; i++) for (let j = 4; j < 8; j++) sum += full[i * 8 + j];
  assert.ok(Math.abs(c.value - sum / 16) < 1e-4);
  assert.equal(describeThumbnailCell(c), `i 0–3, j 4–7: thumbnail block mean ${(sum / 16).toFixed(4)} (the detail map is loading)`);
  // Even a 1×1 block (a thumbnail as large as its map) is labelled as the thumbnail's, not as the detail's value.
  const one = downsample('t', 2, 2, Float32Array.from([0.5, 0, 0, 0.5]), 8);
  assert.match(describeThumbnailCell(cellAt(canvas, one, 99, 99)), /^i 1, j 1: thumbnail block mean 0\.5000/);
});

test('colour ramp is monotone in brightness and clamps', () => {
  const lum = (t: number) => {
    const [r, g, b] = colour(t);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  for (let t = 0; t < 1; t += 0.1) assert.ok(lum(t + 0.1) > lum(t));
  assert.deepEqual(colour(-1), colour(0));
  assert.deepEqual(colour(NaN), colour(0));
});
