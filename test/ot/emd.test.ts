import test from 'node:test';
import assert from 'node:assert/strict';
import { emd, linearAssignment, uniform, transportCost } from '../../worker/ot';
import { emdEngine } from '../../worker/ot/emd';
import { potCases, f64, rng, maxAbsDiff, marginals, randomCost, randomSimplex } from './helpers';

function assertMarginals(plan: Float64Array, a: Float64Array, b: Float64Array, tol: number): void {
  const { rows, cols } = marginals(plan, a.length, b.length);
  assert.ok(maxAbsDiff(rows, a) <= tol, `row marginals off by ${maxAbsDiff(rows, a)}`);
  assert.ok(maxAbsDiff(cols, b) <= tol, `column marginals off by ${maxAbsDiff(cols, b)}`);
  for (const p of plan) assert.ok(p >= 0, `negative plan entry ${p}`);
}

for (const c of potCases()) {
  test(`emd matches POT 0.8.2 on ${c.name} (${c.n}×${c.m})`, () => {
    const r = emd(c.a, c.b, c.M);
    assert.ok(Math.abs(r.cost - c.emdCost) <= 1e-6 * c.emdCost, `cost ${r.cost} vs POT ${c.emdCost}`);
    assert.ok(Math.abs(transportCost(r.plan, c.M, c.n, c.m) - r.cost) <= 1e-12);
    assertMarginals(r.plan, c.a, c.b, 1e-9);
    assert.equal(r.converged, true);
    const pot = f64(`${c.name}_emd_plan.npy`);
    if (c.n === c.m && c.uniform) {
      assert.equal(r.method, 'assignment');
      for (let i = 0; i < c.n; i++) {
        let best = 0;
        for (let j = 1; j < c.m; j++) if (pot[i * c.m + j] > pot[i * c.m + best]) best = j;
        assert.equal(r.permutation![i], best, `row ${i}: column ${r.permutation![i]} vs POT ${best}`);
      }
    } else {
      assert.equal(r.method, 'network-simplex');
    }
    // unique optimum on these random cases: the whole plan agrees with POT's
    assert.ok(maxAbsDiff(r.plan, pot) < 1e-9, `plan differs from POT by ${maxAbsDiff(r.plan, pot)}`);
  });
}

test('square uniform: network simplex agrees with the assignment path', () => {
  for (const c of potCases().filter((c) => c.n === c.m)) {
    const fast = emd(c.a, c.b, c.M);
    const ns = emd(c.a, c.b, c.M, { assignment: false });
    assert.equal(ns.method, 'network-simplex');
    assert.ok(Math.abs(fast.cost - ns.cost) <= 1e-12 * fast.cost, `${fast.cost} vs ${ns.cost}`);
    assertMarginals(ns.plan, c.a, c.b, 1e-12);
  }
});

function bruteForceAssignment(C: Float64Array, n: number): number {
  const perm = Array.from({ length: n }, (_, i) => i);
  let best = Infinity;
  const rec = (k: number, acc: number): void => {
    if (acc >= best) return;
    if (k === n) {
      best = acc;
      return;
    }
    for (let t = k; t < n; t++) {
      [perm[k], perm[t]] = [perm[t], perm[k]];
      rec(k + 1, acc + C[k * n + perm[k]]);
      [perm[k], perm[t]] = [perm[t], perm[k]];
    }
  };
  rec(0, 0);
  return best;
}

test('linear assignment equals brute force on small random and tied integer costs', () => {
  const r = rng(7);
  for (let trial = 0; trial < 300; trial++) {
    const n = 1 + (trial % 7);
    const ties = trial % 2 === 0;
    const C = Float64Array.from({ length: n * n }, () => (ties ? Math.floor(r() * 3) : r()));
    const res = linearAssignment(C, n);
    const seen = new Set(res.rowToCol);
    assert.equal(seen.size, n, 'not a permutation');
    for (let i = 0; i < n; i++) assert.equal(res.colToRow[res.rowToCol[i]], i);
    const bf = bruteForceAssignment(C, n);
    assert.ok(Math.abs(res.cost - bf) < 1e-12, `trial ${trial}: ${res.cost} vs brute force ${bf}`);
    // network simplex on the same problem
    const ns = emd(uniform(n), uniform(n), C, { assignment: false });
    assert.ok(Math.abs(ns.cost - bf / n) < 1e-12, `trial ${trial}: simplex ${ns.cost} vs ${bf / n}`);
  }
});

test('cost built from a known permutation recovers it exactly (assignment and simplex)', () => {
  const n = 80,
    d = 8;
  const r = rng(11);
  const X = Array.from({ length: n * d }, r);
  const sigma = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const k = Math.floor(r() * (i + 1));
    [sigma[i], sigma[k]] = [sigma[k], sigma[i]];
  }
  // Y[sigma[i]] = X[i] (+ tiny noise): the optimal map sends row i to column sigma[i]
  const Y = new Array<number>(n * d);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) Y[sigma[i] * d + k] = X[i * d + k] + 1e-4 * (r() - 0.5);
  const M = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) {
        const t = X[i * d + k] - Y[j * d + k];
        s += t * t;
      }
      M[i * n + j] = Math.sqrt(s);
    }
  const fast = emd(uniform(n), uniform(n), M);
  assert.deepEqual(Array.from(fast.permutation!), sigma);
  const ns = emd(uniform(n), uniform(n), M, { assignment: false });
  for (let i = 0; i < n; i++) assert.equal(ns.plan[i * n + sigma[i]], 1 / n, `row ${i}`);
});

test('EMD cost is at most the cost of random feasible plans', () => {
  const r = rng(5);
  for (const [n, m] of [
    [30, 20],
    [25, 40],
    [32, 32],
  ]) {
    const a = randomSimplex(n, r),
      b = randomSimplex(m, r);
    const M = randomCost(n, m, n * 100 + m);
    const res = emd(a, b, M);
    assertMarginals(res.plan, a, b, 1e-12);
    for (let t = 0; t < 20; t++) {
      // north-west corner rule on a random row/column order: a feasible vertex
      const ro = Array.from({ length: n }, (_, i) => i).sort(() => r() - 0.5);
      const co = Array.from({ length: m }, (_, j) => j).sort(() => r() - 0.5);
      const ra = Float64Array.from(a),
        rb = Float64Array.from(b);
      const P = new Float64Array(n * m);
      let i = 0,
        j = 0;
      while (i < n && j < m) {
        const q = Math.min(ra[ro[i]], rb[co[j]]);
        P[ro[i] * m + co[j]] += q;
        ra[ro[i]] -= q;
        rb[co[j]] -= q;
        if (ra[ro[i]] <= rb[co[j]]) i++;
        else j++;
      }
      assert.ok(res.cost <= transportCost(P, M, n, m) + 1e-12);
    }
    // the independent plan a bᵀ
    const ind = new Float64Array(n * m);
    for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) ind[i * m + j] = a[i] * b[j];
    assert.ok(res.cost < transportCost(ind, M, n, m));
  }
});

test('rectangular uniform EMD equals the replicated square assignment', () => {
  for (const [n, m, seed] of [
    [6, 4, 1],
    [9, 6, 2],
    [8, 12, 3],
  ]) {
    const M = randomCost(n, m, seed);
    const res = emd(uniform(n), uniform(m), M);
    // lcm replication: row i → m/g copies, column j → n/g copies
    const g = ((x: number, y: number): number => {
      while (y) [x, y] = [y, x % y];
      return x;
    })(n, m);
    const L = (n * m) / g,
      rr = L / n,
      cr = L / m;
    const C = new Float64Array(L * L);
    for (let I = 0; I < L; I++) for (let J = 0; J < L; J++) C[I * L + J] = M[Math.floor(I / rr) * m + Math.floor(J / cr)];
    const lap = linearAssignment(C, L);
    assert.ok(Math.abs(res.cost - lap.cost / L) < 1e-12, `${n}×${m}: ${res.cost} vs ${lap.cost / L}`);
  }
});

test('degenerate costs and marginals finish with valid plans', () => {
  for (const n of [1, 2, 5, 64]) {
    for (const fill of [0, 1, 0.5]) {
      const M = new Float64Array(n * n).fill(fill);
      const sq = emd(uniform(n), uniform(n), M);
      assert.ok(Math.abs(sq.cost - fill) < 1e-12);
      assertMarginals(sq.plan, uniform(n), uniform(n), 1e-12);
      const ns = emd(uniform(n), uniform(n), M, { assignment: false });
      assert.ok(Math.abs(ns.cost - fill) < 1e-12);
      assertMarginals(ns.plan, uniform(n), uniform(n), 1e-12);
      const rect = emd(uniform(n), uniform(n + 3), new Float64Array(n * (n + 3)).fill(fill));
      assertMarginals(rect.plan, uniform(n), uniform(n + 3), 1e-12);
    }
  }
  // zero rows in the cost and zero-mass entries in the marginals
  const n = 10,
    m = 7;
  const M = randomCost(n, m, 9);
  for (let j = 0; j < m; j++) M[3 * m + j] = 0;
  const a = uniform(n).map((v, i) => (i % 4 === 0 ? 0 : v));
  const s = a.reduce((x, y) => x + y, 0);
  const a2 = a.map((v) => v / s);
  const b = uniform(m).map((v, j) => (j === 2 ? 0 : v * (m / (m - 1))));
  const res = emd(a2, b, M);
  assertMarginals(res.plan, a2, b, 1e-12);
  for (let j = 0; j < m; j++) assert.equal(res.plan[0 * m + j], 0);
  // b rescaled onto a's mass when the sums differ within tolerance
  const b2 = uniform(m).map((v) => v * (1 + 5e-7));
  const res2 = emd(uniform(n), b2, randomCost(n, m, 4));
  assertMarginals(res2.plan, uniform(n), uniform(m), 1e-12);
});

test('non-normalised masses and negative costs', () => {
  const n = 12,
    m = 9;
  const r = rng(3);
  const a = randomSimplex(n, r).map((v) => v * 5),
    b = randomSimplex(m, r).map((v) => v * 5);
  const M = randomCost(n, m, 8).map((v) => v - 0.5);
  const res = emd(a, b, M);
  assertMarginals(res.plan, a, b, 1e-12);
  const ref = emd(
    a.map((v) => v / 5),
    b.map((v) => v / 5),
    M,
  );
  assert.ok(Math.abs(res.cost - 5 * ref.cost) < 1e-12);
});

test('rectangular uniform EMD (issue 31 shapes): cost within 1e-9 of POT, marginals within 1e-9, WebAssembly and JS pricing agree', () => {
  for (const c of potCases().filter((c) => c.uniform && c.n !== c.m)) {
    const wasm = emd(c.a, c.b, c.M);
    assert.ok(Math.abs(wasm.cost - c.emdCost) <= 1e-9, `${c.name}: cost ${wasm.cost} vs POT ${c.emdCost}`);
    assertMarginals(wasm.plan, c.a, c.b, 1e-9);
    const prev = emdEngine.wasmPricingMin;
    emdEngine.wasmPricingMin = Infinity;
    try {
      const js = emd(c.a, c.b, c.M);
      assert.ok(Math.abs(js.cost - wasm.cost) <= 1e-12, `${c.name}: JS pricing ${js.cost} vs WebAssembly ${wasm.cost}`);
      assert.ok(maxAbsDiff(js.plan, wasm.plan) < 1e-12);
    } finally {
      emdEngine.wasmPricingMin = prev;
    }
  }
  // a larger random rectangle (both pricing paths, several block searches per pivot): same optimum
  const r = rng(31);
  const n = 300,
    m = 200;
  const M = Float64Array.from({ length: n * m }, r);
  const viaWasm = emd(uniform(n), uniform(m), M);
  emdEngine.wasmPricingMin = Infinity;
  try {
    const viaJs = emd(uniform(n), uniform(m), M);
    assert.ok(Math.abs(viaJs.cost - viaWasm.cost) <= 1e-12, `${viaJs.cost} vs ${viaWasm.cost}`);
  } finally {
    emdEngine.wasmPricingMin = 1024;
  }
  assertMarginals(viaWasm.plan, uniform(n), uniform(m), 1e-12);
});
