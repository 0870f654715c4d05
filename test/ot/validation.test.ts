import test from 'node:test';
import assert from 'node:assert/strict';
import { OtfuseError } from '../../worker/errors';
import { emd, sinkhorn, groundMetric, uniform, solveOT, sinkhornSolver, planPreview, permutationDistance } from '../../worker/ot';

function throwsCode(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OtfuseError, `not an OtfuseError: ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  });
}

const M = new Float64Array(6).fill(0.5);
const a = uniform(2),
  b = uniform(3);
const solvers: [string, (a: ArrayLike<number>, b: ArrayLike<number>, M: Float64Array) => unknown][] = [
  ['emd', (x, y, c) => emd(x as Float64Array, y as Float64Array, c)],
  ['sinkhorn', (x, y, c) => sinkhorn(x as Float64Array, y as Float64Array, c, 0.1)],
];

for (const [name, solve] of solvers) {
  test(`${name}: NaN / Inf costs → NUMERIC`, () => {
    throwsCode(() => solve(a, b, Float64Array.from([0, 1, NaN, 0, 0, 0])), 'NUMERIC', /non-finite entry \(NaN\) at row 0, column 2/);
    throwsCode(() => solve(a, b, Float64Array.from([0, 1, 0, 0, Infinity, 0])), 'NUMERIC', /row 1, column 1/);
  });
  test(`${name}: bad marginals → BAD_DATA / NUMERIC`, () => {
    throwsCode(() => solve([0.7, 0.3], [1.2, -0.1, -0.1], M), 'BAD_DATA', /marginal 'b' has a negative entry/);
    throwsCode(() => solve([0.5, 0.6], b, M), 'BAD_DATA', /same total mass: sum\(a\)=1\.1/);
    throwsCode(() => solve([0, 0], [0, 0, 0], M), 'BAD_DATA', /sums to 0/);
    throwsCode(() => solve([NaN, 1], b, M), 'NUMERIC', /marginal 'a' has a non-finite entry/);
  });
  test(`${name}: empty and mismatched shapes → BAD_DATA`, () => {
    throwsCode(() => solve([], b, new Float64Array(0)), 'BAD_DATA', /marginal 'a' is empty/);
    throwsCode(() => solve(a, [], new Float64Array(0)), 'BAD_DATA', /marginal 'b' is empty/);
    throwsCode(() => solve(a, b, new Float64Array(5)), 'BAD_DATA', /5 entries but a \(2\) × b \(3\) needs 6/);
  });
}

test('marginal sums within 1e-6 relative are accepted', () => {
  const r = emd(a, [1 / 3, 1 / 3, 1 / 3 + 5e-7], M);
  assert.ok(Math.abs(r.cost - 0.5) < 1e-12);
  throwsCode(() => emd(a, [1 / 3, 1 / 3, 1 / 3 + 5e-6], M), 'BAD_DATA', /same total mass/);
});

test('sinkhorn: bad reg and options → BAD_DATA', () => {
  for (const reg of [0, -1, NaN, Infinity]) throwsCode(() => sinkhorn(a, b, M, reg), 'BAD_DATA', /regularisation must be a finite positive number/);
  throwsCode(() => sinkhorn(a, b, M, 0.1, { numItermax: 0 }), 'BAD_DATA', /numItermax/);
  throwsCode(() => sinkhorn(a, b, M, 0.1, { method: 'nope' as never }), 'BAD_DATA', /unknown Sinkhorn method/);
  throwsCode(() => sinkhornSolver(a, b, M, {} as never), 'BAD_DATA', /needs options.reg/);
  throwsCode(() => solveOT(a, b, M, { solver: 'greedy' } as never), 'BAD_DATA', /unknown OT solver/);
});

test('ground metric: shape mismatches, non-finite inputs, unknown options', () => {
  const X = new Float32Array(6),
    Y = new Float32Array(9);
  throwsCode(() => groundMetric(X, Y, 2, 3, 4), 'BAD_DATA', /X has 6 values, expected n×d = 2×4/);
  throwsCode(() => groundMetric(X, new Float32Array(8), 2, 3, 3), 'BAD_DATA', /Y has 8 values/);
  throwsCode(() => groundMetric(X, Y, 0, 3, 3), 'BAD_DATA', /n must be a positive integer/);
  throwsCode(() => groundMetric(Float32Array.from([0, NaN, 0, 0, 0, 0]), Y, 2, 3, 3), 'NUMERIC', /X has a non-finite value at row 0, column 1/);
  throwsCode(() => groundMetric(X, Y, 2, 3, 3, { metric: 'manhattan' as never }), 'BAD_DATA', /unknown ground metric/);
  throwsCode(() => groundMetric(X, Y, 2, 3, 3, { normalize: 'l2' as never }), 'BAD_DATA', /unknown cost normalisation/);
});

test('diagnostics and uniform(): bad shapes', () => {
  throwsCode(() => uniform(0), 'BAD_DATA', /positive integer/);
  throwsCode(() => planPreview(new Float64Array(5), 2, 3), 'BAD_DATA', /5 entries, expected 2×3/);
  throwsCode(() => permutationDistance(new Float64Array(4), 2, 2), 'NUMERIC', /no mass/);
});

test('uniform-signature solvers return plan and cost', () => {
  const e = solveOT(a, b, M, { solver: 'emd' });
  const s = solveOT(a, b, M, { solver: 'sinkhorn', reg: 0.1, method: 'stabilized' });
  for (const r of [e, s]) {
    assert.equal(r.plan.length, 6);
    assert.ok(Math.abs(r.cost - 0.5) < 1e-12);
  }
});
