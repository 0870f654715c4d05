// Shared helpers for the OT tests (not a test file itself).
import path from 'node:path';
import fs from 'node:fs';
import { readNpy } from '../../worker/data/npy';
import { seededRandom as rng } from '../../worker/random';
import type { KnoppProblem } from '../../worker/ot/validate';

export const FIXTURES = path.join(process.cwd(), 'test/fixtures/pot');

export interface PotCase {
  name: string;
  n: number;
  m: number;
  uniform: boolean;
  emdCost: number;
  sinkhornCost: Record<string, number>;
  M: Float64Array;
  a: Float64Array;
  b: Float64Array;
}

export function potCases(): PotCase[] {
  const cases = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'cases.json'), 'utf8')) as Record<string, Record<string, number | boolean>>;
  return Object.entries(cases).map(([name, c]) => ({
    name,
    n: c.n as number,
    m: c.m as number,
    uniform: c.uniform as boolean,
    emdCost: c.emd_cost as number,
    sinkhornCost: { '0.08': c['sinkhorn0.08_cost'] as number, '0.01': c['sinkhorn0.01_cost'] as number },
    M: f64(`${name}_M.npy`),
    a: f64(`${name}_a.npy`),
    b: f64(`${name}_b.npy`),
  }));
}

export function f64(file: string): Float64Array {
  const arr = readNpy(path.join(FIXTURES, file));
  if (!(arr.data instanceof Float64Array)) throw new Error(`${file}: expected float64`);
  return arr.data;
}

export { seededRandom as rng } from '../../worker/random';

export function maxAbsDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new Error(`length ${x.length} vs ${y.length}`);
  let d = 0;
  for (let k = 0; k < x.length; k++) d = Math.max(d, Math.abs(x[k] - y[k]));
  return d;
}

export function marginals(plan: ArrayLike<number>, n: number, m: number): { rows: Float64Array; cols: Float64Array } {
  const rows = new Float64Array(n),
    cols = new Float64Array(m);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < m; j++) {
      const p = plan[i * m + j];
      rows[i] += p;
      cols[j] += p;
    }
  return { rows, cols };
}

/** Random costs: Euclidean distances between random d-dim points, divided by the max (like the fixtures). */
export function randomCost(n: number, m: number, seed: number, d = 16): Float64Array {
  const r = rng(seed);
  const X = Array.from({ length: n * d }, r),
    Y = Array.from({ length: m * d }, r);
  const M = new Float64Array(n * m);
  let mx = 0;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) {
        const t = X[i * d + k] - Y[j * d + k];
        s += t * t;
      }
      M[i * m + j] = Math.sqrt(s);
      mx = Math.max(mx, M[i * m + j]);
    }
  for (let k = 0; k < M.length; k++) M[k] /= mx;
  return M;
}

export function randomSimplex(n: number, r: () => number): Float64Array {
  const x = Float64Array.from({ length: n }, () => 0.05 + r());
  let s = 0;
  for (const v of x) s += v;
  return x.map((v) => v / s);
}

/** A Knopp kernel's problem from positional values (the kernels take one KnoppProblem). */
export function kp(a: Float64Array, b: Float64Array, M: Float64Array, n: number, m: number, reg: number, numItermax: number, stopThr: number): KnoppProblem {
  return { a, b, M, n, m, reg, numItermax, stopThr };
}
