// The WebAssembly SIMD kernels of the Sinkhorn–Knopp loop (ot/sinkhorn-wasm.ts) against the scalar loop and POT.
import test from 'node:test';
import assert from 'node:assert/strict';
import { sinkhorn, uniform, transportCost } from '../../worker/ot';
import { configureSinkhornEngine } from '../../worker/ot/sinkhorn';
import { expKernel, knoppWasm, wasmKernels, type KnoppOutcome } from '../../worker/ot/sinkhorn-wasm';
import { potCases, f64, kp, maxAbsDiff, marginals, randomCost, rng, randomSimplex } from './helpers';

/** Runs fn with the scalar loops only (the reference the kernels must reproduce). */
function scalar<T>(fn: () => T): T {
  const prev = configureSinkhornEngine({ wasm: false });
  try {
    return fn();
  } finally {
    configureSinkhornEngine(prev);
  }
}

/** knoppWasm with plain Knopp (no 'auto' limit); fails the test unless it returns a solve. */
function wasm(...args: Parameters<typeof kp>): KnoppOutcome {
  const r = knoppWasm(kp(...args));
  assert.ok(r && typeof r === 'object', `knoppWasm returned ${String(r)}`);
  return r;
}

test('the kernels compile here (WebAssembly SIMD), so sinkhorn() uses them', () => {
  assert.ok(wasmKernels(), 'WebAssembly SIMD is unavailable in this Node');
});

test('exp kernel: within 2 ulp of Math.exp from −746 to 710, subnormals, overflow, infinities and NaN exact in kind', () => {
  const xs: number[] = [];
  for (let j = 0; j <= 200001; j++) xs.push(-746 + (1456 * j) / 200001); // odd count: the scalar tail runs too
  xs.push(0, -0, 1e-300, -1e-300, 709.78, 709.79, -708.4, -708.39, -744.44, -745.13, -745.14, -800, 800, Infinity, -Infinity, NaN);
  const x = Float64Array.from(xs);
  const y = expKernel(x);
  let worst = 0;
  for (let k = 0; k < x.length; k++) {
    const want = Math.exp(x[k]);
    const got = y[k];
    if (Number.isNaN(want)) assert.ok(Number.isNaN(got), `exp(${x[k]}) = ${got}`);
    else if (want === 0 || !Number.isFinite(want)) assert.equal(got, want, `exp(${x[k]})`);
    else if (want < 2.2250738585072014e-308) assert.ok(Math.abs(got - want) <= 5e-324, `exp(${x[k]}) = ${got} vs ${want}`);
    else worst = Math.max(worst, Math.abs(got - want) / want);
  }
  assert.ok(worst <= 2 * 2 ** -52, `largest relative difference ${worst}`);
});

for (const c of potCases()) {
  for (const reg of ['0.08', '0.01']) {
    test(`kernels reproduce POT 0.8.2 and the scalar loop on ${c.name} (${c.n}×${c.m}), reg ${reg}`, () => {
      const w = wasm(c.a, c.b, c.M, c.n, c.m, Number(reg), 1000, 1e-9);
      const s = scalar(() => sinkhorn(c.a, c.b, c.M, Number(reg), { method: 'knopp' }));
      assert.equal(w.iterations, s.iterations);
      assert.equal(w.converged, s.converged);
      assert.equal(w.numericalError, false);
      assert.ok(maxAbsDiff(w.plan, s.plan) < 1e-15, `max |plan − scalar| = ${maxAbsDiff(w.plan, s.plan)}`);
      const d = maxAbsDiff(w.plan, f64(`${c.name}_sinkhorn${reg}_plan.npy`));
      assert.ok(d < 1e-12, `max |plan − POT| = ${d}`);
      assert.ok(Math.abs(w.cost - c.sinkhornCost[reg]) <= 1e-9 * c.sinkhornCost[reg]);
      assert.ok(Math.abs(transportCost(w.plan, c.M, c.n, c.m) - w.cost) < 1e-12);
      const { rows, cols } = marginals(w.plan, c.n, c.m);
      assert.ok(Math.abs(w.rowError - maxAbsDiff(rows, c.a)) < 1e-15);
      assert.ok(Math.abs(w.colError - maxAbsDiff(cols, c.b)) < 1e-15);
      assert.ok(Math.abs(w.marginalError - s.marginalError) <= 1e-6 * s.marginalError + 1e-15);
    });
  }
}

test('kernels on odd and non-square shapes, non-uniform marginals and zero-mass rows match the scalar loop', () => {
  for (const [n, m, seed] of [
    [1, 1, 1],
    [1, 9, 2],
    [7, 1, 3],
    [33, 65, 4],
    [130, 17, 5],
    [257, 255, 6],
  ]) {
    const a = randomSimplex(n, rng(seed)),
      b = randomSimplex(m, rng(seed + 100));
    if (n > 3) {
      a[1] = 0; // a zero-mass row: u stays 0 there
      const s = a.reduce((x, y) => x + y, 0);
      for (let i = 0; i < n; i++) a[i] /= s;
    }
    const M = randomCost(n, m, seed);
    const w = wasm(a, b, M, n, m, 0.05, 1000, 1e-9);
    const s = scalar(() => sinkhorn(a, b, M, 0.05, { method: 'knopp' }));
    assert.equal(w.iterations, s.iterations, `${n}×${m}`);
    assert.equal(w.converged, s.converged, `${n}×${m}`);
    assert.ok(maxAbsDiff(w.plan, s.plan) < 1e-14, `${n}×${m}: ${maxAbsDiff(w.plan, s.plan)}`);
    assert.ok(Math.abs(w.cost - s.cost) < 1e-13, `${n}×${m}`);
  }
});

test('numerical trouble (a column of K underflows) stops with the previous iterate, as the scalar loop does', () => {
  const n = 20,
    m = 12;
  const M = randomCost(n, m, 8);
  for (let i = 0; i < n; i++) M[i * m + 3] = 50; // exp(−50/0.05) = 0 for the whole column 3
  const w = wasm(uniform(n), uniform(m), M, n, m, 0.05, 1000, 1e-9);
  const s = scalar(() => sinkhorn(uniform(n), uniform(m), M, 0.05, { method: 'knopp' }));
  assert.equal(w.numericalError, true);
  assert.equal(w.iterations, s.iterations);
  assert.equal(w.converged, false);
  assert.ok(maxAbsDiff(w.plan, s.plan) < 1e-15);
  // and sinkhorn() in 'auto' still moves on to the stabilised solver
  assert.equal(sinkhorn(uniform(n), uniform(m), M, 0.05).method, 'stabilized');
});

test('a 1024² solve: the float64 kernels and scalar loop give the same plan, iterations and cost', () => {
  const n = 1024;
  const M = randomCost(n, n, 11);
  let mx = 0;
  for (const x of M) mx = Math.max(mx, x);
  for (let k = 0; k < M.length; k++) M[k] /= mx;
  const prev = configureSinkhornEngine({ k32: false }); // the float32-K kernels: sinkhorn-wasm32.test.ts
  let w;
  try {
    w = sinkhorn(uniform(n), uniform(n), M, 0.08);
  } finally {
    configureSinkhornEngine(prev);
  }
  assert.equal(w.kernel, 'wasm-f64');
  const s = scalar(() => sinkhorn(uniform(n), uniform(n), M, 0.08));
  assert.equal(w.iterations, s.iterations);
  assert.ok(maxAbsDiff(w.plan, s.plan) < 1e-18, `${maxAbsDiff(w.plan, s.plan)}`);
  assert.ok(Math.abs(w.cost - s.cost) < 1e-14 * s.cost);
});

test("'auto' makes the scalar loop's decision in the kernels' pass (Knopp, or the stabilized solver near the limit)", () => {
  const n = 48,
    m = 40;
  const seen = new Set<string>();
  for (const shift of [0.5, 1.0, 1.5, 1.995, 2.005, 3]) {
    const M = randomCost(n, m, 3);
    let mx = 0;
    for (const x of M) mx = Math.max(mx, x);
    for (let k = 0; k < M.length; k++) M[k] = (0.4 * M[k]) / mx;
    for (let j = 0; j < m; j++) M[7 * m + j] += shift; // row 7's minimum is at least `shift`: its exponent ≥ shift / reg
    const r = sinkhorn(uniform(n), uniform(m), M, 0.01, { numItermax: 3000 });
    const s = scalar(() => sinkhorn(uniform(n), uniform(m), M, 0.01, { numItermax: 3000 }));
    assert.equal(r.method, s.method, `shift ${shift}`);
    assert.equal(r.iterations, s.iterations, `shift ${shift}`);
    assert.ok(maxAbsDiff(r.plan, s.plan) < 1e-13, `${maxAbsDiff(r.plan, s.plan)}`);
    seen.add(s.method);
  }
  assert.deepEqual([...seen].sort(), ['knopp', 'stabilized']);
  // and the limit itself: exponent 200.5 > 200 is never Knopp in 'auto'
  const M = new Float64Array(36).fill(0.1);
  for (let j = 0; j < 6; j++) M[2 * 6 + j] = 2.005;
  assert.equal(knoppWasm(kp(uniform(6), uniform(6), M, 6, 6, 0.01, 100, 1e-9), 200), 'stabilize');
  assert.notEqual(knoppWasm(kp(uniform(6), uniform(6), M, 6, 6, 0.01, 100, 1e-9), 201), 'stabilize');
});

test('a non-finite cost entry is reported by sinkhorn() exactly as the scalar check reports it', () => {
  const n = 40,
    m = 33;
  for (const bad of [NaN, Infinity, -Infinity]) {
    const M = randomCost(n, m, 4);
    M[17 * m + 31] = bad;
    const scalarError = (() => {
      try {
        scalar(() => sinkhorn(uniform(n), uniform(m), M, 0.05));
      } catch (e) {
        return (e as Error).message;
      }
      return 'no error';
    })();
    assert.match(scalarError, /row 17, column 31/);
    assert.throws(
      () => sinkhorn(uniform(n), uniform(m), M, 0.05),
      (e: Error) => e.message === scalarError,
    );
    assert.equal(knoppWasm(kp(uniform(n), uniform(m), M, n, m, 0.05, 10, 1e-9)), 'non-finite');
  }
});
