import test from 'node:test';
import assert from 'node:assert/strict';
import { planEntropy, meanBestMatchMass, permutationDistance, planPreview, transportCost, diagnose, uniform, emd, sinkhorn } from '../../worker/ot';
import { potCases } from './helpers';
import { seededRandom } from '../../worker/random';

const perm = [2, 0, 3, 1];
const P = new Float64Array(16);
perm.forEach((j, i) => {
  P[i * 4 + j] = 0.25;
});
const U = new Float64Array(16).fill(1 / 16);

test('entropy: log n for a permutation, log(nm) for the independent plan', () => {
  assert.ok(Math.abs(planEntropy(P, 4, 4) - Math.log(4)) < 1e-12);
  assert.ok(Math.abs(planEntropy(U, 4, 4) - Math.log(16)) < 1e-12);
  assert.ok(
    Math.abs(
      planEntropy(
        P.map((x) => x * 3),
        4,
        4,
      ) - Math.log(4),
    ) < 1e-12,
  ); // scale-free
});

test('mean best-match mass: 1 for a hard map, 1/m for uniform', () => {
  assert.equal(meanBestMatchMass(P, 4, 4), 1);
  assert.ok(Math.abs(meanBestMatchMass(U, 4, 4) - 0.25) < 1e-15);
});

test('permutation distance: 0 on a permutation, 1 − 1/n on uniform, finds the best permutation', () => {
  const d = permutationDistance(P, 4, 4);
  assert.deepEqual(Array.from(d.match), perm);
  assert.ok(Math.abs(d.hardness) < 1e-15 && Math.abs(d.frobenius) < 1e-7);
  const du = permutationDistance(U, 4, 4);
  assert.ok(Math.abs(du.hardness - 0.75) < 1e-12);
  // ‖4U − Π‖_F² = 16·(1/16) − 2·4·(1/4) + 4 = 3 → √(3/8)
  assert.ok(Math.abs(du.frobenius - Math.sqrt(3 / 8)) < 1e-12);
  // a mixture 0.7·Π + 0.3·uniform
  const mix = P.map((x, k) => 0.7 * x + 0.3 * U[k]);
  const dm = permutationDistance(mix, 4, 4);
  assert.deepEqual(Array.from(dm.match), perm);
  assert.ok(Math.abs(dm.hardness - 0.3 * 0.75) < 1e-12);
  // rectangular: row argmax
  const R = Float64Array.from([0.3, 0.1, 0, 0, 0, 0.1, 0.2, 0, 0.05, 0.2, 0.05, 0]);
  const dr = permutationDistance(R, 3, 4);
  assert.deepEqual(Array.from(dr.match), [0, 2, 1]);
  assert.ok(Math.abs(dr.hardness - (1 - 0.7 / 1.0)) < 1e-12);
  assert.ok(Number.isNaN(dr.frobenius));
});

test('preview: block means, at most maxSize per side, identity when small', () => {
  const small = planPreview(P, 4, 4);
  assert.deepEqual(Array.from(small.data), Array.from(P));
  const n = 10,
    m = 6;
  const X = Float64Array.from({ length: n * m }, (_, k) => k);
  const pv = planPreview(X, n, m, 3);
  assert.equal(pv.rows, 3);
  assert.equal(pv.cols, 3);
  // row bins: floor(i*3/10) → {0..3},{4..6},{7..9}; column bins: {0,1},{2,3},{4,5}
  const mean = (rows: number[], cols: number[]): number => {
    let s = 0;
    for (const i of rows) for (const j of cols) s += X[i * m + j];
    return s / (rows.length * cols.length);
  };
  assert.equal(pv.data[0], mean([0, 1, 2, 3], [0, 1]));
  assert.equal(pv.data[4], mean([4, 5, 6], [2, 3]));
  assert.equal(pv.data[8], mean([7, 8, 9], [4, 5]));
  const big = planPreview(new Float64Array(300 * 700).fill(2), 300, 700);
  assert.equal(big.rows, 256);
  assert.equal(big.cols, 256);
  assert.ok(big.data.every((v) => v === 2));
});

test('diagnose on solver output: EMD is hard, Sinkhorn is soft', () => {
  const c = potCases().find((x) => x.name === 'sq64')!;
  const e = emd(c.a, c.b, c.M);
  const s = sinkhorn(c.a, c.b, c.M, 0.08);
  const de = diagnose(e.plan, 64, 64, c.M);
  const ds = diagnose(s.plan, 64, 64, c.M);
  assert.ok(Math.abs(de.cost! - c.emdCost) < 1e-12);
  assert.ok(Math.abs(transportCost(s.plan, c.M, 64, 64) - ds.cost!) < 1e-15);
  assert.equal(de.meanBestMatch, 1);
  assert.ok(Math.abs(de.hardness) < 1e-12);
  assert.ok(Math.abs(de.entropy - Math.log(64)) < 1e-9);
  assert.ok(ds.hardness > 0.3 && ds.meanBestMatch < 0.7 && ds.entropy > de.entropy);
  assert.equal(diagnose(uniform(4), 2, 2).cost, undefined);
});

test('permutation distance: distinct row maxima are the best permutation; large colliding plans fall back to row maxima', () => {
  // A noisy permutation: every row's largest entry is on a distinct column, so no assignment problem is needed.
  const n = 1500;
  const rand = seededRandom(3);
  const perm = Array.from({ length: n }, (_, i) => (i * 7) % n);
  const P = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) P[i * n + j] = (j === perm[i] ? 0.5 : 0) + 0.1 * rand();
  const d = permutationDistance(P, n, n);
  assert.deepEqual(Array.from(d.match), perm);
  assert.ok(Number.isFinite(d.frobenius));
  // Two rows share their best column: above EXACT_ASSIGNMENT_MAX the row maxima stand in (hardness a lower bound).
  P[1 * n + perm[0]] = 2;
  const c = permutationDistance(P, n, n);
  assert.equal(c.match[1], perm[0]);
  assert.ok(Number.isNaN(c.frobenius));
  // A small plan with the same collision still gets the exact permutation.
  const m = 4;
  const Q = Float64Array.from([0.4, 0.3, 0, 0, 0.35, 0.1, 0, 0, 0, 0, 0.2, 0.1, 0, 0, 0.1, 0.2]);
  const e = permutationDistance(Q, m, m);
  assert.deepEqual(Array.from(e.match), [1, 0, 2, 3]);
});
