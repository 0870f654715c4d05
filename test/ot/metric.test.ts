import test from 'node:test';
import assert from 'node:assert/strict';
import { groundMetric, median } from '../../worker/ot';
import { rng } from './helpers';

function naive(X: ArrayLike<number>, Y: ArrayLike<number>, n: number, m: number, d: number, kind: string): Float64Array {
  const C = new Float64Array(n * m);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < m; j++) {
      let s = 0,
        xx = 0,
        yy = 0,
        xy = 0;
      for (let k = 0; k < d; k++) {
        const x = X[i * d + k],
          y = Y[j * d + k];
        s += (x - y) * (x - y);
        xx += x * x;
        yy += y * y;
        xy += x * y;
      }
      C[i * m + j] = kind === 'euclidean' ? Math.sqrt(s) : kind === 'sqeuclidean' ? s : xx > 0 && yy > 0 ? 1 - xy / Math.sqrt(xx * yy) : 1;
    }
  return C;
}

test('ground metrics equal the naive definitions (odd sizes, long vectors cross the k-blocking)', () => {
  const r = rng(1);
  for (const [n, m, d] of [
    [1, 1, 1],
    [7, 5, 3],
    [33, 17, 300],
    [5, 70, 600],
  ]) {
    const X = Float32Array.from({ length: n * d }, () => r() * 2 - 1);
    const Y = Float32Array.from({ length: m * d }, () => r() * 2 - 1);
    for (const metric of ['euclidean', 'sqeuclidean', 'cosine'] as const) {
      const got = groundMetric(X, Y, n, m, d, { metric, normalize: 'none' });
      const want = naive(X, Y, n, m, d, metric);
      let err = 0;
      for (let k = 0; k < want.length; k++) err = Math.max(err, Math.abs(got.cost[k] - want[k]));
      assert.ok(err < 1e-9 * Math.max(1, d), `${metric} ${n}×${m}×${d}: error ${err}`);
      assert.equal(got.scale, 1);
    }
  }
});

test('normalisations divide by max / mean / median', () => {
  const r = rng(2);
  const n = 9,
    m = 6,
    d = 4;
  const X = Float64Array.from({ length: n * d }, r),
    Y = Float64Array.from({ length: m * d }, r);
  const raw = naive(X, Y, n, m, d, 'euclidean');
  const sorted = Array.from(raw).sort((x, y) => x - y);
  const want = {
    max: sorted[sorted.length - 1],
    mean: sorted.reduce((x, y) => x + y, 0) / sorted.length,
    median: (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2,
  };
  for (const normalize of ['max', 'mean', 'median'] as const) {
    const got = groundMetric(X, Y, n, m, d, { normalize });
    assert.ok(Math.abs(got.scale - want[normalize]) < 1e-12, `${normalize}: ${got.scale} vs ${want[normalize]}`);
    for (let k = 0; k < raw.length; k++) assert.ok(Math.abs(got.cost[k] - raw[k] / want[normalize]) < 1e-12);
  }
  assert.equal(Math.max(...groundMetric(X, Y, n, m, d).cost), 1);
});

test('identical points: zero distance, no negatives or NaN; all-zero costs are left unscaled', () => {
  const X = Float32Array.from([1e3, 1e3 + 0.5, -7, 3, 1e3, 1e3 + 0.5, -7, 3]);
  const c = groundMetric(X, X, 2, 2, 4, { normalize: 'none' });
  assert.deepEqual(Array.from(c.cost), [0, 0, 0, 0]);
  const z = groundMetric(new Float32Array(6), new Float32Array(6), 2, 2, 3, { metric: 'cosine' });
  assert.deepEqual(Array.from(z.cost), [1, 1, 1, 1]);
  const e = groundMetric(X, X, 2, 2, 4);
  assert.equal(e.scale, 1);
  assert.deepEqual(Array.from(e.cost), [0, 0, 0, 0]);
});

test('median of odd and even arrays', () => {
  assert.equal(median(Float64Array.from([3, 1, 2])), 2);
  assert.equal(median(Float64Array.from([4, 1, 3, 2])), 2.5);
  assert.equal(median(Float64Array.from([5, 5, 5, 5])), 5);
  const r = rng(3);
  const x = Float64Array.from({ length: 1001 }, r);
  assert.equal(median(x), Array.from(x).sort((p, q) => p - q)[500]);
});
