// The refit's blocked float64 SPD solver (worker/fusion/dense.ts) against the unblocked JS reference: the same
// solution to float64 rounding, with the products in JS and in ONNX Runtime, across uneven block edges.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { choleskyBlocked, setDenseBlock, solveSpd, solveSpdBlocked, solveSpdDirect } from '../../worker/fusion/dense';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { VIT, maxAbsDiff } from '../helpers';
import { configureLinalg, linalgStats } from '../../worker/fusion/linalg';
import { OtfuseError } from '../../worker/errors';

/** Deterministic pseudo-random numbers in [-1, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

/** G = AᵀA/rows for a random rows×n A plus a rank-one bias-like term: SPD, condition number in the hundreds. */
function randomSpd(n: number, rows: number, seed: number): Float64Array {
  const r = rng(seed);
  const A = Float64Array.from({ length: rows * n }, r);
  for (let i = 0; i < rows; i++) A[i * n + n - 1] = 1; // a ones column, as in the refit's augmented inputs
  const G = new Float64Array(n * n);
  for (let p = 0; p < rows; p++)
    for (let i = 0; i < n; i++) {
      const a = A[p * n + i] / rows;
      for (let j = 0; j < n; j++) G[i * n + j] += a * A[p * n + j];
    }
  return G;
}

function relErr(X: Float64Array, Y: Float64Array): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < X.length; i++) {
    num += (X[i] - Y[i]) ** 2;
    den += Y[i] ** 2;
  }
  return Math.sqrt(num / den);
}

const n = 300,
  c = 70;
const G = randomSpd(n, 420, 1);
const B = Float64Array.from({ length: n * c }, rng(2));
const lambda = 1e-3;
const ref = solveSpdDirect(G, n, B, c, lambda)!;

test('the unblocked reference solves (G + λI) X = B', () => {
  let worst = 0;
  for (const [i, j] of [
    [0, 0],
    [150, 33],
    [299, 69],
    [77, 5],
  ]) {
    let s = lambda * ref[i * c + j];
    for (let k = 0; k < n; k++) s += G[i * n + k] * ref[k * c + j];
    worst = Math.max(worst, Math.abs(s - B[i * c + j]));
  }
  assert.ok(worst < 1e-10, String(worst));
});

test('blocked Cholesky solve equals the unblocked one (JS products, uneven blocks)', () => {
  const previous = configureLinalg({ engine: 'js' });
  try {
    for (const nb of [64, 100, 256]) {
      const X = solveSpdBlocked(G, n, B, c, lambda, nb)!;
      const e = relErr(X, ref);
      assert.ok(e < 1e-9, `nb=${nb}: ${e}`);
      assert.ok(e > 0 || nb >= n, 'a different summation order should not give bit-identical results');
    }
  } finally {
    configureLinalg(previous);
  }
});

test('blocked Cholesky solve equals the unblocked one with the products in ONNX Runtime', () => {
  const previous = configureLinalg({ engine: 'ort', minMacs: 0, precision: 'f32' }); // f32 is overridden: the solver forces f64
  const before = linalgStats.ortCalls;
  try {
    const X = solveSpdBlocked(G, n, B, c, lambda, 64)!;
    assert.ok(linalgStats.ortCalls > before, 'the products should have run in ONNX Runtime');
    const e = relErr(X, ref);
    assert.ok(e < 1e-9, String(e));
    const auto = solveSpd(G, n, B, c, lambda); // n = 300 > 256: the default path is blocked too
    assert.ok(relErr(auto, ref) < 1e-9);
  } finally {
    configureLinalg(previous);
  }
});

test('the blocked factor reproduces G + λI', () => {
  const f = choleskyBlocked(G, n, lambda, 64)!;
  let worst = 0;
  for (const [i, j] of [
    [0, 0],
    [299, 0],
    [200, 130],
    [299, 299],
    [64, 63],
  ]) {
    let s = 0;
    for (let k = 0; k <= Math.min(i, j); k++) s += f.L[i * n + k] * f.L[j * n + k];
    worst = Math.max(worst, Math.abs(s - G[i * n + j] - (i === j ? lambda : 0)));
  }
  assert.ok(worst < 1e-12, String(worst));
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) assert.equal(f.L[i * n + j], 0);
});

test('an indefinite matrix is a NUMERIC error, a singular one is solved with jitter', () => {
  const bad = Float64Array.from(G);
  for (let i = 0; i < n; i++) bad[i * n + i] -= 10; // far below the smallest eigenvalue
  assert.throws(
    () => solveSpd(bad, n, B, c, 0),
    (e: unknown) => e instanceof OtfuseError && e.code === 'NUMERIC',
  );
  const singular = randomSpd(n, 120, 3); // rank 120 < n
  assert.equal(choleskyBlocked(singular, n, 0, 64), null);
  const X = solveSpd(singular, n, B, c, 0);
  assert.ok(X.every(Number.isFinite));
});

test('a whole refit with the blocked solver (block 40 on widths 48/192) gives the unblocked refit', async () => {
  const calib = openDataset({ path: path.join(VIT, 'calib200.npz'), limit: 64 });
  const models = [loadModel(path.join(VIT, 'vit48_s11.onnx')), loadModel(path.join(VIT, 'vit48_s10.onnx'))];
  const recipe = resolveRecipe({ samples: 64, refit: 'regmean', refitRidge: 0.01 });
  const plain = await fuseLoaded({ models, recipe, calib }); // n ≤ 193 < 256: unblocked
  const previous = setDenseBlock(40);
  try {
    const blocked = await fuseLoaded({ models, recipe, calib });
    let worst = 0,
      changed = 0;
    for (const l of plain.refit!) {
      const b = blocked.refit!.find((x) => x.name === l.name)!;
      worst = Math.max(worst, Math.abs(b.errorRefit - l.errorRefit) / l.errorRefit);
      if (l.errorRefit < 0.9 * l.errorAverage) changed++;
    }
    assert.ok(worst < 1e-6, `relative difference of the refit errors ${worst}`);
    assert.ok(changed > 5, 'the refit should change layers (not a no-op)');
    let w = 0;
    for (const t of plain.fused.initializerNames()) w = Math.max(w, maxAbsDiff(plain.fused.getInitializer(t).data, blocked.fused.getInitializer(t).data));
    assert.ok(w < 1e-5, `max abs weight difference ${w}`);
  } finally {
    setDenseBlock(previous);
  }
});
