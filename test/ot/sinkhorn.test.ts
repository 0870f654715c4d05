import test from 'node:test';
import assert from 'node:assert/strict';
import { sinkhorn, emd, uniform, transportCost } from '../../worker/ot';
import { configureSinkhornEngine } from '../../worker/ot/sinkhorn';
import { potCases, f64, maxAbsDiff, marginals, randomCost, rng, randomSimplex } from './helpers';

/** Max |x − ref| / ref over ref's nonzero entries. */
function maxRel(x: Float64Array, ref: Float64Array): number {
  let d = 0;
  for (let k = 0; k < x.length; k++) if (ref[k] !== 0) d = Math.max(d, Math.abs(x[k] - ref[k]) / Math.abs(ref[k]));
  return d;
}

for (const k32 of [true, false]) {
  for (const c of potCases()) {
    for (const reg of ['0.08', '0.01']) {
      test(`sinkhorn reg ${reg} matches POT 0.8.2 on ${c.name} (${c.n}×${c.m}), float32 K ${k32 ? 'allowed (default)' : 'off'}`, () => {
        const prev = configureSinkhornEngine({ k32 });
        let r;
        try {
          r = sinkhorn(c.a, c.b, c.M, Number(reg));
        } finally {
          configureSinkhornEngine(prev);
        }
        checkPot(c, reg, r);
        // the default takes float32 K from 128² entries up where −M/reg ≥ −87: sq256 at reg 0.08 (exponents ≥ −12.5)
        const want = k32 && c.n * c.m >= 128 * 128 && reg === '0.08' ? 'wasm-f32' : 'wasm-f64';
        assert.equal(r.kernel, want);
      });
    }
  }
}

function checkPot(c: ReturnType<typeof potCases>[number], reg: string, r: ReturnType<typeof sinkhorn>): void {
  assert.equal(r.method, 'knopp');
  const pot = f64(`${c.name}_sinkhorn${reg}_plan.npy`);
  const d = maxAbsDiff(r.plan, pot);
  assert.ok(d < 1e-8, `max |plan − POT| = ${d}`);
  if (r.kernel === 'wasm-f32') {
    // K rounded to float32 (relative 6e-8): the plan is POT's to ~1e-7 relative, far inside 1e-8 absolute
    assert.ok(maxRel(r.plan, pot) < 2e-7, `max relative |plan − POT| = ${maxRel(r.plan, pot)}`);
    assert.ok(d < 1e-10, `max |plan − POT| = ${d}`);
  } else {
    // float64 throughout: same iterate as POT up to the order of additions
    assert.ok(d < 1e-12, `max |plan − POT| = ${d}`);
    assert.ok(maxRel(r.plan, pot) < 1e-9, `max relative |plan − POT| = ${maxRel(r.plan, pot)}`);
  }
  assert.ok(Math.abs(r.cost - c.sinkhornCost[reg]) <= 1e-9 * c.sinkhornCost[reg], `cost ${r.cost} vs ${c.sinkhornCost[reg]}`);
  assert.ok(Math.abs(transportCost(r.plan, c.M, c.n, c.m) - r.cost) < 1e-12);
  if (reg === '0.08') {
    assert.equal(r.converged, true);
    assert.ok(r.marginalError < 1e-9);
  }
}

test("reg 0.01 on sq64 hits POT's 1000-iteration cap; a longer run converges", () => {
  const c = potCases().find((x) => x.name === 'sq64')!;
  const capped = sinkhorn(c.a, c.b, c.M, 0.01);
  assert.equal(capped.iterations, 1000);
  assert.equal(capped.converged, false);
  assert.ok(capped.marginalError > 1e-9);
  const full = sinkhorn(c.a, c.b, c.M, 0.01, { numItermax: 100000 });
  assert.equal(full.converged, true);
  assert.ok(full.marginalError < 1e-9);
  assert.ok(full.iterations > 1000 && full.iterations % 10 === 1, `iterations ${full.iterations}`);
  const { rows, cols } = marginals(full.plan, c.n, c.m);
  assert.ok(maxAbsDiff(cols, c.b) < 1e-9);
  assert.ok(maxAbsDiff(rows, c.a) < 1e-12); // the last update fits the rows exactly
  // the stabilised solver converges to the same plan
  const stab = sinkhorn(c.a, c.b, c.M, 0.01, { method: 'stabilized', numItermax: 100000 });
  assert.equal(stab.converged, true);
  assert.ok(maxAbsDiff(stab.plan, full.plan) < 1e-9, `${maxAbsDiff(stab.plan, full.plan)}`);
});

test('stabilized matches knopp where both work', () => {
  for (const c of potCases()) {
    const k = sinkhorn(c.a, c.b, c.M, 0.08, { method: 'knopp', stopThr: 1e-13 });
    const s = sinkhorn(c.a, c.b, c.M, 0.08, { method: 'stabilized', stopThr: 1e-13 });
    assert.ok(maxAbsDiff(k.plan, s.plan) < 1e-10, `${c.name}: ${maxAbsDiff(k.plan, s.plan)}`);
  }
});

test('auto switches to the stabilized solver when exp(−M/reg) underflows; knopp alone fails there', () => {
  const n = 40,
    m = 30;
  const M = randomCost(n, m, 21);
  const reg = 1e-3;
  const r = sinkhorn(uniform(n), uniform(m), M, reg, { numItermax: 20000 });
  assert.equal(r.method, 'stabilized');
  const { rows, cols } = marginals(r.plan, n, m);
  // Sinkhorn converges slowly at reg 1e-3 (|colsum − b| still ~1e-6 of 1/m after 20000 iterations), but the
  // iterate stays finite and on target: rows exact after the u update, columns close.
  assert.ok(maxAbsDiff(rows, uniform(n)) < 1e-12, `rows ${maxAbsDiff(rows, uniform(n))}`);
  assert.ok(maxAbsDiff(cols, uniform(m)) < 1e-5, `cols ${maxAbsDiff(cols, uniform(m))}`);
  assert.ok(r.marginalError < 1e-5);
  for (const p of r.plan) assert.ok(Number.isFinite(p) && p >= 0);
  const exact = emd(uniform(n), uniform(m), M);
  assert.ok(r.cost >= exact.cost - 1e-9 && r.cost - exact.cost < 5e-3, `gap ${r.cost - exact.cost}`);
  // plain Knopp: far costs underflow to 0; it stops on numerical errors (POT's behaviour) instead of converging
  const k = sinkhorn(
    uniform(n),
    uniform(m),
    M.map((x) => x + 1),
    reg,
    { method: 'knopp' },
  );
  assert.equal(k.numericalError, true);
  assert.equal(k.converged, false);
  // and auto handles the shifted problem too
  const a2 = sinkhorn(
    uniform(n),
    uniform(m),
    M.map((x) => x + 1),
    reg,
    { numItermax: 20000 },
  );
  assert.equal(a2.method, 'stabilized');
  assert.ok(Math.abs(a2.cost - 1 - r.cost) < 1e-8);
});

test('sinkhorn cost approaches the EMD cost monotonically as reg → 0', () => {
  const n = 48,
    m = 40;
  const r0 = rng(99);
  const a = randomSimplex(n, r0),
    b = randomSimplex(m, r0);
  const M = randomCost(n, m, 77);
  const exact = emd(a, b, M).cost;
  const ladder = [1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002];
  let prev = Infinity;
  for (const reg of ladder) {
    const s = sinkhorn(a, b, M, reg, { numItermax: 200000, stopThr: 1e-12 });
    assert.equal(s.converged, true, `reg ${reg} did not converge`);
    const gap = s.cost - exact;
    assert.ok(gap > -1e-10, `reg ${reg}: Sinkhorn cost below EMD by ${-gap}`);
    assert.ok(gap < prev, `reg ${reg}: gap ${gap} did not shrink (previous ${prev})`);
    prev = gap;
  }
  assert.ok(prev < 2e-3, `final gap ${prev}`);
});

test('degenerate costs finish: all-equal and zero costs give the independent plan', () => {
  for (const fill of [0, 1, 3.5]) {
    const n = 16,
      m = 12;
    const r = rng(4);
    const a = randomSimplex(n, r),
      b = randomSimplex(m, r);
    for (const method of ['knopp', 'stabilized', 'auto'] as const) {
      const s = sinkhorn(a, b, new Float64Array(n * m).fill(fill), 0.05, { method });
      assert.equal(s.converged, true);
      for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) assert.ok(Math.abs(s.plan[i * m + j] - a[i] * b[j]) < 1e-12);
    }
  }
});
