// Per-tensor building blocks of the merge methods (float64 arithmetic; the result is rounded to float32 once):
// task vectors, magnitude trimming, DARE's seeded drop mask, TIES' sign election with the disjoint mean.
import { seededRandom } from '../random';

/** δ = θ − θ_base in float64. */
export function taskVector(theta: Float32Array, base: Float32Array): Float64Array {
  const d = new Float64Array(theta.length);
  for (let j = 0; j < d.length; j++) d[j] = theta[j] - base[j];
  return d;
}

/** How many entries magnitude trimming keeps: ⌊density·n⌋, at least one (mergekit refuses k = 0). */
export function keptCount(density: number, n: number): number {
  return Math.max(1, Math.floor(density * n));
}

/**
 * Keeps the ⌊density·n⌋ entries of largest |δ| (ties broken by the lower index) and zeroes the rest, in place.
 * density ≥ 1 keeps everything.
 */
export function trimByMagnitude(d: Float64Array, density: number): Float64Array {
  if (density >= 1) return d;
  const k = keptCount(density, d.length);
  const order = Array.from({ length: d.length }, (_, j) => j);
  order.sort((a, b) => Math.abs(d[b]) - Math.abs(d[a]) || a - b);
  for (let r = k; r < order.length; r++) d[order[r]] = 0;
  return d;
}

/** 32-bit FNV-1a of a tensor name (UTF-8). */
export function fnv1a(name: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(name, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * The DARE mask stream of one (tensor, model): mulberry32 (worker/random.ts) seeded with
 * (seed + FNV-1a(name)·0x9E3779B1 + (model+1)·0x85EBCA6B) mod 2³². Entry j is kept when the j-th draw < density.
 * Documented here because the NumPy reference (scripts/fixtures/merge_reference.py) draws the same stream.
 */
export function dareStream(seed: number, name: string, model: number): () => number {
  const s = (seed + Math.imul(fnv1a(name), 0x9e3779b1) + Math.imul(model + 1, 0x85ebca6b)) >>> 0;
  return seededRandom(s);
}

/** Drops each entry with probability 1 − density and rescales the survivors by 1/density, in place. */
export function dareDrop(d: Float64Array, density: number, random: () => number): Float64Array {
  if (density >= 1) return d;
  for (let j = 0; j < d.length; j++) d[j] = random() < density ? d[j] / density : 0;
  return d;
}

/**
 * Mixes task vectors. Without `elect`: Σ w_i δ_i, divided by Σ w_i when `normalize`. With `elect` (TIES): the
 * sign of Σ w_i δ_i is elected per entry (0 counts as +), only entries whose weighted sign agrees are kept, and
 * with `normalize` the sum is divided by Σ w_i over the kept entries (the disjoint mean; 1 where none is kept).
 */
export function mixTaskVectors(deltas: Float64Array[], weights: number[], options: { elect: boolean; normalize: boolean }): Float64Array {
  const n = deltas[0].length;
  const out = new Float64Array(n);
  const wsum = weights.reduce((a, b) => a + b, 0);
  for (let j = 0; j < n; j++) {
    let sum = 0;
    for (let i = 0; i < deltas.length; i++) sum += weights[i] * deltas[i][j];
    if (!options.elect) {
      out[j] = options.normalize && Math.abs(wsum) >= 1e-8 ? sum / wsum : sum;
      continue;
    }
    const sign = sum >= 0 ? 1 : -1;
    let kept = 0;
    let divisor = 0;
    for (let i = 0; i < deltas.length; i++) {
      const wd = weights[i] * deltas[i][j];
      if (Math.sign(wd) === sign) {
        kept += wd;
        divisor += weights[i];
      }
    }
    out[j] = options.normalize && divisor !== 0 ? kept / divisor : kept;
  }
  return out;
}

/** θ_base + λ·δ, rounded to float32. */
export function addToBase(base: Float32Array, delta: Float64Array, lambda: number): Float32Array {
  const out = new Float32Array(base.length);
  for (let j = 0; j < out.length; j++) out[j] = base[j] + lambda * delta[j];
  return out;
}
