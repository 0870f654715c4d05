// "Which neurons matched" without the DOM: sort by match turns a permutation map into the identity, top-k lists
// each neuron's best partners with their share of its mass, and the log / shared colour scales (issue 27 item 5).
import test from 'node:test';
import assert from 'node:assert/strict';
import { hardMatches, matchOrder, orderedMap, permuteRows, topMatches } from '../../extension/mapOrder';
import { colourScale, scaleT, scaleValue, sharedScale, smallestPositive } from '../../webview/mapMath';
import { seededRandom } from '../../worker/random';

/** A random permutation of 0..n-1 (Fisher–Yates with the engine's seeded generator). */
function randomPerm(n: number, seed: number): number[] {
  const rand = seededRandom(seed);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** The n×n map of row i → column sigma[i] (row-normalised: ones). */
function permutationMap(sigma: number[]): Float32Array {
  const n = sigma.length;
  const m = new Float32Array(n * n);
  sigma.forEach((j, i) => (m[i * n + j] = 1));
  return m;
}

const isIdentity = (n: number, m: Float32Array) => {
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (m[i * n + j] !== (i === j ? 1 : 0)) return false;
  return true;
};

test('sort by match: an exact permutation (48 neurons) becomes the identity; the order maps back to the original rows', () => {
  const sigma = randomPerm(48, 7);
  const map = permutationMap(sigma);
  assert.ok(!isIdentity(48, map), 'the fixture is really permuted');
  const order = matchOrder(48, 48, map);
  const sorted = permuteRows(48, 48, map, order);
  assert.ok(isIdentity(48, sorted));
  // Position k shows the original row whose match is anchor neuron k.
  order.forEach((i, k) => assert.equal(sigma[i], k));
});

test('sort by match on a soft map: each row sorted by its heaviest column, ties by the larger share', () => {
  // 4 rows × 3 cols: rows 0 and 2 both match column 1 (row 2 more strongly), row 1 matches 0, row 3 matches 2.
  const m = Float32Array.from([0.1, 0.6, 0.3, 0.8, 0.1, 0.1, 0.05, 0.9, 0.05, 0.2, 0.2, 0.6]);
  assert.deepEqual(matchOrder(4, 3, m), [1, 2, 0, 3]);
  // Wider other model (6 rows onto 3 anchor neurons): a monotone staircase.
  const w = new Float32Array(18);
  [2, 0, 1, 2, 0, 1].forEach((j, i) => (w[i * 3 + j] = 1));
  const order = matchOrder(6, 3, w);
  const best = order.map((i) => [2, 0, 1, 2, 0, 1][i]);
  assert.deepEqual(best, [0, 0, 1, 1, 2, 2]);
});

test('the payload the view draws: sorted rows, the order, and top-k over the full map', () => {
  const sigma = randomPerm(48, 3);
  const p = orderedMap('t', { rows: 48, cols: 48, data: permutationMap(sigma) }, 384, { sort: true, top: 3 });
  assert.ok(isIdentity(48, p.data));
  assert.equal(p.rowOrder!.length, 48);
  assert.equal(p.top!.k, 3);
  // Row i's best match is sigma[i] with all of its mass; no second match.
  for (let i = 0; i < 48; i++) {
    assert.equal(p.top!.cols[i * 3], sigma[i]);
    assert.equal(p.top!.mass[i * 3], 1);
    assert.equal(p.top!.cols[i * 3 + 1], -1);
  }
  // Unsorted: the original map, no order.
  const raw = orderedMap('t', { rows: 48, cols: 48, data: permutationMap(sigma) }, 384, { top: 3 });
  assert.equal(raw.rowOrder, undefined);
  assert.ok(!isIdentity(48, raw.data));
  // A large map is sorted before it is down-sampled: 96 → 48 block means keep a diagonal of 0.5.
  const big = orderedMap('b', { rows: 96, cols: 96, data: permutationMap(randomPerm(96, 5)) }, 48, { sort: true });
  for (let k = 0; k < 48; k++) assert.equal(big.data[k * 48 + k], 0.5);
});

test('top-k: best columns in order with their share of the row mass', () => {
  const m = Float32Array.from([0.1, 0.5, 0.3, 0.1, 0, 0, 0.2, 0.8]);
  const t = topMatches(2, 4, m, 3);
  assert.deepEqual(t.cols, [1, 2, 0, 3, 2, -1]);
  const r = (x: number) => Math.round(x * 1e6) / 1e6;
  assert.deepEqual(t.mass.map(r), [0.5, 0.3, 0.1, 0.8, 0.2, 0]);
  assert.equal(hardMatches(t, 0.9), 0);
  assert.equal(hardMatches(t, 0.8), 1);
  // k larger than the columns is clamped.
  assert.equal(topMatches(1, 2, Float32Array.from([1, 3]), 5).k, 2);
});

test('log colour scale: decades evenly spaced from the smallest positive value (at most 4 decades) to the max', () => {
  const s = colourScale(0, 1, true, 1e-3);
  assert.equal(s.log, true);
  assert.equal(s.lo, 1e-3);
  assert.equal(scaleT(1, s), 1);
  assert.ok(Math.abs(scaleT(1e-2, s) - 1 / 3) < 1e-12);
  assert.ok(Math.abs(scaleT(1e-1, s) - 2 / 3) < 1e-12);
  assert.equal(scaleT(0, s), 0);
  assert.ok(Math.abs(scaleValue(0.5, s) - Math.sqrt(1e-3)) < 1e-12);
  // A tiny positive minimum is floored at 4 decades below the maximum.
  assert.ok(Math.abs(colourScale(0, 2, true, 1e-12).lo - 2e-4) < 1e-15);
  // Linear: the old behaviour.
  const lin = colourScale(0, 2);
  assert.equal(lin.log, false);
  assert.equal(scaleT(0.5, lin), 0.25);
  // A log scale of an all-zero map falls back to linear.
  assert.equal(colourScale(0, 0, true).log, false);
  assert.equal(smallestPositive([0, 0.2, 0.05, -1]), 0.05);
});

test('shared scale (Compare): one min/max over all maps, so equal mass gets equal colour', () => {
  const a = { min: 0, max: 1, data: [0, 1] };
  const b = { min: 0.01, max: 0.5, data: [0.01, 0.5] };
  const s = sharedScale([a, b]);
  assert.equal(s.min, 0);
  assert.equal(s.max, 1);
  // 0.5 is mid-scale in both maps' drawing (not the top of b's colour range).
  assert.equal(scaleT(0.5, s), 0.5);
  assert.equal(sharedScale([a, b], true).lo, 0.01);
});
