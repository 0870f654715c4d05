// The float32-K Sinkhorn kernels (ot/sinkhorn-wasm32.ts, kernels/sinkhorn32.wat) against Math.exp, the float64
// kernels, the scalar loop and POT 0.8.2's plans.
import test from 'node:test';
import assert from 'node:assert/strict';
import { sinkhorn, uniform } from '../../worker/ot';
import { configureSinkhornEngine } from '../../worker/ot/sinkhorn';
import { knoppWasm, type KnoppOutcome } from '../../worker/ot/sinkhorn-wasm';
import { expKernel32, knoppWasm32, K32_RANGE } from '../../worker/ot/sinkhorn-wasm32';
import { potCases, f64, kp, maxAbsDiff, marginals, randomCost, rng, randomSimplex } from './helpers';

/** Max |x − ref| / |ref| over ref's nonzero entries. */
function maxRel(x: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0;
  for (let k = 0; k < x.length; k++) if (ref[k] !== 0) d = Math.max(d, Math.abs(x[k] - ref[k]) / Math.abs(ref[k]));
  return d;
}

function solve32(...args: Parameters<typeof kp>): KnoppOutcome {
  const r = knoppWasm32(kp(...args));
  assert.ok(r && typeof r === 'object', `knoppWasm32 returned ${String(r)}`);
  return r;
}

function solve64(...args: Parameters<typeof kp>): KnoppOutcome {
  const r = knoppWasm(kp(...args));
  assert.ok(r && typeof r === 'object', `knoppWasm returned ${String(r)}`);
  return r;
}

test('exp kernel: float32(exp(x)) within 1 float32 ulp of Math.exp rounded to float32, over the whole range [−87, 88]', () => {
  const r = rng(5);
  const xs: number[] = [];
  for (let j = 0; j <= 400001; j++) xs.push(K32_RANGE.lo + ((K32_RANGE.hi - K32_RANGE.lo) * j) / 400001); // odd count: the tail runs
  for (let j = 0; j < 100000; j++) xs.push(-12.5 * r()); // the exponents of a max-normalised cost at reg 0.08
  xs.push(0, -0, 1e-300, -1e-300, K32_RANGE.lo, K32_RANGE.hi, -0.5 * Math.LN2, 0.5 * Math.LN2);
  const x = Float64Array.from(xs);
  const y = expKernel32(x);
  let worst = 0,
    exact = 0;
  for (let k = 0; k < x.length; k++) {
    const want = Math.fround(Math.exp(x[k]));
    const ulp = Math.fround(want * (1 + 2 ** -23)) - want; // the float32 spacing at want (want is normal here)
    assert.ok(ulp > 0 && Number.isFinite(y[k]), `exp(${x[k]}) = ${y[k]}`);
    worst = Math.max(worst, Math.abs(y[k] - want) / ulp);
    if (y[k] === want) exact++;
  }
  assert.ok(worst <= 1, `largest difference ${worst} float32 ulp`);
  assert.ok(exact / x.length > 0.99, `only ${exact} of ${x.length} correctly rounded`);
});

for (const c of potCases()) {
  test(`float32 K reproduces POT 0.8.2 on ${c.name} (${c.n}×${c.m}), reg 0.08: 1e-9 absolute, 2e-7 relative, same iterations as float64`, () => {
    const w = solve32(c.a, c.b, c.M, c.n, c.m, 0.08, 1000, 1e-9);
    const d = solve64(c.a, c.b, c.M, c.n, c.m, 0.08, 1000, 1e-9);
    const pot = f64(`${c.name}_sinkhorn0.08_plan.npy`);
    assert.equal(w.iterations, d.iterations);
    assert.equal(w.converged, true);
    assert.equal(w.numericalError, false);
    assert.ok(maxAbsDiff(w.plan, pot) < 1e-9, `max |plan − POT| = ${maxAbsDiff(w.plan, pot)}`);
    assert.ok(maxRel(w.plan, pot) < 2e-7, `max relative |plan − POT| = ${maxRel(w.plan, pot)}`);
    // and not the float64 plan by accident: float32 rounding of K shows at ~1e-8 relative
    assert.ok(maxRel(w.plan, d.plan) > 1e-9, `relative difference to the float64 kernels ${maxRel(w.plan, d.plan)}`);
    assert.ok(Math.abs(w.cost - c.sinkhornCost['0.08']) <= 1e-9 * c.sinkhornCost['0.08']);
    // marginals as tight as the float64 solve's: the rows exactly (last update), the columns to the stopping rule
    const { rows, cols } = marginals(w.plan, c.n, c.m);
    assert.ok(maxAbsDiff(rows, c.a) < 1e-15, `row error ${maxAbsDiff(rows, c.a)}`);
    assert.ok(Math.abs(w.rowError - maxAbsDiff(rows, c.a)) < 1e-15);
    assert.ok(Math.abs(w.colError - maxAbsDiff(cols, c.b)) < 1e-15);
    assert.ok(w.colError < 1e-9 && w.marginalError < 1e-9);
  });
}

test('the float32 solve is the float64 solve of the cost −reg·log K32 (the K it rounded to)', () => {
  const n = 133,
    m = 97,
    reg = 0.05;
  const a = randomSimplex(n, rng(1)),
    b = randomSimplex(m, rng(2));
  const M = randomCost(n, m, 9);
  const K32 = expKernel32(M.map((x) => -x / reg));
  const M32 = Float64Array.from(K32, (k) => -reg * Math.log(k));
  assert.ok(maxAbsDiff(M32, M) < reg * 2 ** -23, `|M32 − M| = ${maxAbsDiff(M32, M)}`);
  const w = solve32(a, b, M, n, m, reg, 1000, 1e-9);
  const d = solve64(a, b, M32, n, m, reg, 1000, 1e-9);
  assert.equal(w.iterations, d.iterations);
  assert.ok(maxRel(w.plan, d.plan) < 1e-13, `relative difference ${maxRel(w.plan, d.plan)}`);
  // while the float64 solve of M itself differs by the rounding of K
  const e = solve64(a, b, M, n, m, reg, 1000, 1e-9);
  assert.ok(maxRel(w.plan, e.plan) > 1e-9 && maxRel(w.plan, e.plan) < 2e-7, `${maxRel(w.plan, e.plan)}`);
});

test('odd shapes (rows not a multiple of 4, single rows/columns), non-uniform marginals and a zero-mass row', () => {
  for (const [n, m, seed] of [
    [1, 1, 1],
    [1, 9, 2],
    [7, 1, 3],
    [33, 65, 4],
    [130, 17, 5],
    [257, 255, 6],
    [6, 1031, 7],
  ]) {
    const a = randomSimplex(n, rng(seed)),
      b = randomSimplex(m, rng(seed + 100));
    if (n > 3) {
      a[1] = 0; // a zero-mass row: u stays 0 there
      const s = a.reduce((x, y) => x + y, 0);
      for (let i = 0; i < n; i++) a[i] /= s;
    }
    const M = randomCost(n, m, seed);
    const w = solve32(a, b, M, n, m, 0.05, 1000, 1e-9);
    const s = solve64(a, b, M, n, m, 0.05, 1000, 1e-9);
    assert.equal(w.iterations, s.iterations, `${n}×${m}`);
    assert.equal(w.converged, s.converged, `${n}×${m}`);
    assert.ok(maxRel(w.plan, s.plan) < 2e-7, `${n}×${m}: ${maxRel(w.plan, s.plan)}`);
    if (n > 3) for (let j = 0; j < m; j++) assert.equal(w.plan[m + j], 0);
    assert.ok(Math.abs(w.cost - s.cost) < 1e-7 * s.cost, `${n}×${m}`);
  }
});

test("exponents outside [−87, 88] (or at 'auto''s limit) give 'range', and sinkhorn() then runs the float64 kernels", () => {
  const n = 160,
    m = 120;
  const M = randomCost(n, m, 12); // max 1
  assert.notEqual(knoppWasm32(kp(uniform(n), uniform(m), M, n, m, 1 / 86.9, 10, 1e-9)), 'range');
  assert.equal(knoppWasm32(kp(uniform(n), uniform(m), M, n, m, 1 / 87.1, 10, 1e-9)), 'range');
  assert.equal(knoppWasm32(kp(uniform(n), uniform(m), M, n, m, 0.08, 10, 1e-9), 12), 'range'); // 'auto' limit 12 < 12.5
  const neg = M.map((x) => -x); // exponents up to +1/reg
  assert.notEqual(knoppWasm32(kp(uniform(n), uniform(m), neg, n, m, 1 / 87.9, 10, 1e-9)), 'range');
  assert.equal(knoppWasm32(kp(uniform(n), uniform(m), neg, n, m, 1 / 88.1, 10, 1e-9)), 'range');
  const r = sinkhorn(uniform(n), uniform(m), M, 0.01);
  assert.equal(r.kernel, 'wasm-f64');
  const prev = configureSinkhornEngine({ k32: false });
  try {
    assert.equal(maxAbsDiff(r.plan, sinkhorn(uniform(n), uniform(m), M, 0.01).plan), 0);
  } finally {
    configureSinkhornEngine(prev);
  }
  assert.equal(sinkhorn(uniform(n), uniform(m), M, 0.08).kernel, 'wasm-f32');
});

test('a non-finite cost entry: the float32 kernels hand over, and sinkhorn() reports it as the scalar check does', () => {
  const n = 140,
    m = 130;
  for (const bad of [NaN, Infinity, -Infinity]) {
    const M = randomCost(n, m, 4);
    M[77 * m + 101] = bad;
    assert.equal(knoppWasm32(kp(uniform(n), uniform(m), M, n, m, 0.05, 10, 1e-9)), 'range');
    assert.throws(() => sinkhorn(uniform(n), uniform(m), M, 0.05), /row 77, column 101/);
  }
});

test('a 1024² solve through sinkhorn(): float32 K, same iterations as the scalar loop, plans within 2e-7 relative', () => {
  const n = 1024;
  const M = randomCost(n, n, 11);
  const w = sinkhorn(uniform(n), uniform(n), M, 0.08);
  assert.equal(w.kernel, 'wasm-f32');
  const prev = configureSinkhornEngine({ wasm: false });
  let s;
  try {
    s = sinkhorn(uniform(n), uniform(n), M, 0.08);
  } finally {
    configureSinkhornEngine(prev);
  }
  assert.equal(s.kernel, 'scalar');
  assert.equal(w.iterations, s.iterations);
  assert.ok(maxAbsDiff(w.plan, s.plan) < 1e-11, `${maxAbsDiff(w.plan, s.plan)}`);
  assert.ok(maxRel(w.plan, s.plan) < 2e-7, `${maxRel(w.plan, s.plan)}`);
  assert.ok(Math.abs(w.cost - s.cost) < 1e-9 * s.cost);
  assert.ok(w.rowError < 1e-15 && w.colError < 1e-9, `${w.rowError} ${w.colError}`);
});
