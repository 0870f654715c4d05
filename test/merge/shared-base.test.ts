// The shared-base statistic's pieces: the closed-form expectation over random pairings, and the identity-map count.
import test from 'node:test';
import assert from 'node:assert/strict';
import { identityMaps, pairingRatio } from '../../worker/merge/sharedBase';
import { seededRandom } from '../../worker/random';

test('pairingRatio: the closed form ‖a‖² + ‖b‖² − 2n·ā·b̄ is the mean of ‖a − π(b)‖² over random permutations π', () => {
  const rand = seededRandom(5);
  const n = 64;
  const a = Float32Array.from({ length: n }, () => 0.3 + rand());
  const b = Float32Array.from({ length: n }, (_, j) => a[j] + 0.05 * (rand() - 0.5) + 0.1);
  let diff = 0;
  for (let j = 0; j < n; j++) diff += (a[j] - b[j]) ** 2;
  // Monte Carlo over 20,000 Fisher–Yates shuffles.
  const idx = Array.from({ length: n }, (_, j) => j);
  let mean = 0;
  const trials = 20000;
  for (let t = 0; t < trials; t++) {
    for (let j = n - 1; j > 0; j--) {
      const k = Math.floor(rand() * (j + 1));
      [idx[j], idx[k]] = [idx[k], idx[j]];
    }
    let s = 0;
    for (let j = 0; j < n; j++) s += (a[j] - b[idx[j]]) ** 2;
    mean += s / trials;
  }
  const ratio = pairingRatio(a, b)!;
  assert.ok(Math.abs(ratio - Math.sqrt(diff / mean)) < 0.01 * ratio, `${ratio} vs Monte Carlo ${Math.sqrt(diff / mean)}`);
  assert.ok(ratio < 0.5, `a near copy is much closer than a random pairing (${ratio})`);
  // Independent draws: ≈ 1. Constant tensors and tiny ones carry no information.
  const c = Float32Array.from({ length: 4096 }, () => rand());
  const d = Float32Array.from({ length: 4096 }, () => rand());
  assert.ok(Math.abs(pairingRatio(c, d)! - 1) < 0.05);
  assert.equal(pairingRatio(new Float32Array(64).fill(1), new Float32Array(64).fill(1)), undefined);
  assert.equal(pairingRatio(new Float32Array(8), new Float32Array(8)), undefined);
});

test('identityMaps counts square maps whose every row peaks on its own index', () => {
  const map = (rows: number[][]) => ({ map: { plan: Float64Array.from(rows.flat()), n: rows.length, m: rows[0].length } });
  const identity = map([
    [0.6, 0.4],
    [0.1, 0.5],
  ]);
  const swapped = map([
    [0.1, 0.4],
    [0.5, 0.1],
  ]);
  const rectangular = map([[1, 0, 0]]);
  assert.deepEqual(identityMaps([[], [identity, swapped, rectangular]]), { maps: 2, identity: 1 });
});
