// Decoder maps' diagnostics (worker/fusion/decoder/mapDiagnostics.ts): for a permutation, the O(n) values equal what
// worker/ot/diagnostics.ts computes on the n² plan run.ts stores; `moved` counts the units sent elsewhere; a map that
// is not a permutation gets the general diagnostics of its plan.
import test from 'node:test';
import assert from 'node:assert/strict';
import { decoderMapDiagnostics } from '../../worker/fusion/decoder/mapDiagnostics';
import { diagnose } from '../../worker/ot/diagnostics';

/** The plan run.ts stores for a map (planOf). */
function planOf(map: Int32Array): Float64Array {
  const n = map.length;
  const plan = new Float64Array(n * n);
  for (let i = 0; i < n; i++) plan[map[i] * n + i] = 1 / n;
  return plan;
}

function shuffled(n: number, seed: number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  let s = seed;
  for (let i = n - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

test('a permutation: the O(n) diagnostics equal those of its stored plan; moved = share of units not in place', () => {
  for (const [n, seed] of [
    [12, 1],
    [64, 2],
    [300, 3],
  ]) {
    const map = shuffled(n, seed);
    const got = decoderMapDiagnostics(map);
    const want = diagnose(planOf(map), n, n);
    // (The plan's Frobenius distance is √ of a difference of sums of n² terms: float64 rounding gives ~1e-8.)
    for (const [key, tol] of [
      ['entropy', 1e-9],
      ['meanBestMatch', 1e-12],
      ['hardness', 1e-12],
      ['frobeniusToPermutation', 1e-6],
    ] as const)
      assert.ok(Math.abs(got[key] - want[key]) < tol, `${key} n=${n}: ${got[key]} vs ${want[key]}`);
    let fixed = 0;
    for (let i = 0; i < n; i++) if (map[i] === i) fixed++;
    assert.equal(got.moved, (n - fixed) / n);
  }
  assert.equal(decoderMapDiagnostics(Int32Array.from({ length: 10 }, (_, i) => i)).moved, 0);
  // Two of ten units swapped.
  assert.equal(decoderMapDiagnostics(Int32Array.from([1, 0, 2, 3, 4, 5, 6, 7, 8, 9])).moved, 0.2);
  assert.deepEqual(decoderMapDiagnostics(new Int32Array(0)), {});
});

test('not a permutation (two units onto one): the general diagnostics of the plan, not those of a permutation', () => {
  const map = Int32Array.from([0, 0, 2, 3, 1, 5]);
  const got = decoderMapDiagnostics(map);
  const want = diagnose(planOf(map), 6, 6);
  assert.ok(Math.abs(got.hardness - want.hardness) < 1e-12 && got.hardness > 0, `hardness ${got.hardness}`);
  assert.ok(Math.abs(got.entropy - want.entropy) < 1e-12);
  assert.equal(got.moved, 2 / 6);
});
