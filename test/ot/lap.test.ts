// The dense linear assignment (worker/ot/lap.ts) on sizes where its shortest-path search runs in WebAssembly SIMD
// (lap-wasm.ts, kernels/lap.wat): the same assignment, cost and prices as the plain-JS search, an optimality
// certificate from its own prices (LP duality: with u_i = C[i, σ(i)] − v[σ(i)], every reduced cost C[i, j] − u_i − v_j
// is ≥ 0, so no assignment is cheaper), and the cost of the network simplex, an independent solver.
import test from 'node:test';
import assert from 'node:assert/strict';
import { emd, linearAssignment, uniform, groundMetric } from '../../worker/ot';
import { lapEngine } from '../../worker/ot/lap';
import { rng } from './helpers';

type Kind = 'uniform' | 'ties' | 'geometric' | 'correlated';

/** Cost matrices of four kinds: iid uniform, integers in {0, 1, 2} (many ties), Euclidean distances between random
 * 8-d points, and squared distances between the "neurons" of two random networks fed the same inputs (as the decoder
 * MLP costs: no clear matching). */
function costOf(kind: Kind, n: number, seed: number): Float64Array {
  const r = rng(seed);
  if (kind === 'uniform') return Float64Array.from({ length: n * n }, r);
  if (kind === 'ties') return Float64Array.from({ length: n * n }, () => Math.floor(r() * 3));
  if (kind === 'geometric') {
    const X = Float64Array.from({ length: n * 8 }, r),
      Y = Float64Array.from({ length: n * 8 }, r);
    return groundMetric(X, Y, n, n, 8, { metric: 'euclidean', normalize: 'none' }).cost;
  }
  const s = 48,
    k = 16;
  const inputs = Float64Array.from({ length: s * k }, () => r() - 0.5);
  const acts = (): Float64Array => {
    const W = Float64Array.from({ length: n * k }, () => r() - 0.5);
    const A = new Float64Array(n * s);
    for (let i = 0; i < n; i++)
      for (let t = 0; t < s; t++) {
        let z = 0;
        for (let q = 0; q < k; q++) z += W[i * k + q] * inputs[t * k + q];
        A[i * s + t] = Math.max(0, z);
      }
    return A;
  };
  return groundMetric(acts(), acts(), n, n, s, { metric: 'sqeuclidean', normalize: 'none' }).cost;
}

function solveWith(wasmMin: number, C: Float64Array, n: number): ReturnType<typeof linearAssignment> {
  const before = lapEngine.wasmMin;
  lapEngine.wasmMin = wasmMin;
  try {
    return linearAssignment(C, n);
  } finally {
    lapEngine.wasmMin = before;
  }
}

/** The most negative reduced cost under the solver's own prices (relative to the largest |C|). */
function worstReducedCost(C: Float64Array, n: number, rowToCol: Int32Array, v: Float64Array): number {
  let scale = 0;
  for (const c of C) scale = Math.max(scale, Math.abs(c));
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const u = C[i * n + rowToCol[i]] - v[rowToCol[i]];
    for (let j = 0; j < n; j++) worst = Math.min(worst, (C[i * n + j] - u - v[j]) / (scale || 1));
  }
  return worst;
}

for (const kind of ['uniform', 'ties', 'geometric', 'correlated'] as Kind[]) {
  test(`linear assignment, ${kind} costs: WebAssembly and JS searches agree; optimal by its prices and vs the network simplex`, () => {
    for (const [n, seed] of [
      [33, 1],
      [64, 2],
      [131, 3],
      [400, 4],
    ]) {
      const C = costOf(kind, n, 100 * seed + kind.length);
      const w = solveWith(32, C, n);
      const js = solveWith(Infinity, C, n);
      assert.deepEqual(w.rowToCol, js.rowToCol, `${kind} ${n}: assignments differ`);
      assert.equal(w.cost, js.cost);
      assert.deepEqual(w.v, js.v, `${kind} ${n}: prices differ`);
      assert.equal(new Set(w.rowToCol).size, n, 'not a permutation');
      for (let i = 0; i < n; i++) assert.equal(w.colToRow[w.rowToCol[i]], i);
      const worst = worstReducedCost(C, n, w.rowToCol, w.v);
      assert.ok(worst > -1e-12, `${kind} ${n}: a reduced cost of ${worst} (prices do not certify optimality)`);
      if (n <= 131) {
        const ns = emd(uniform(n), uniform(n), C, { assignment: false });
        const rel = Math.abs(ns.cost * n - w.cost) / Math.max(1, Math.abs(w.cost));
        assert.ok(rel < 1e-9, `${kind} ${n}: assignment ${w.cost} vs network simplex ${ns.cost * n}`);
      }
    }
  });
}

test('linear assignment: a hidden permutation under noise-free costs is recovered at a WebAssembly size', () => {
  const n = 257;
  const r = rng(5);
  const sigma = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [sigma[i], sigma[j]] = [sigma[j], sigma[i]];
  }
  const C = Float64Array.from({ length: n * n }, (_, k) => (sigma[Math.floor(k / n)] === k % n ? 0 : 1 + r()));
  const res = linearAssignment(C, n);
  assert.deepEqual(res.rowToCol, sigma);
  assert.equal(res.cost, 0);
});

test('linear assignment: an infinite cost keeps to the JS search and acts as a forbidden pair', () => {
  const n = 40;
  const C = costOf('uniform', n, 9);
  C[3] = Infinity;
  const res = linearAssignment(C, n); // one forbidden entry: still a finite optimum elsewhere
  assert.notEqual(res.rowToCol[0], 3);
  assert.ok(Number.isFinite(res.cost));
});
