// One epoch's worth of augmented training images for the distillation probe (issue 12): every image of train54k
// once, shifted by up to ±S pixels (zero fill) and/or mixed with another image of the epoch (mixup, λ ~ Beta(a, a);
// the label is the larger part's). Written as a normalised float32 .npz; finetuned on with the teachers' logits
// computed on the same augmented images (the distillation target follows the input, "function matching").
//
//   node dist-bench/quality/augment.bench.js --kind shift|mixup|shiftmix [--shift 2] [--mix-a 1] [--seed 0]
import fs from 'node:fs';
import path from 'node:path';
import { readIdx } from '../../worker/data/idx';
import { encodeNpz } from '../../worker/data/npy';
import { seededRandom } from '../../worker/random';
import { cliArg } from '../common';
import { prepareSplits } from './splits';

const KIND = cliArg('kind', 'shift');
const SHIFT = Number(cliArg('shift', '2'));
const MIX_A = Number(cliArg('mix-a', '1'));
const SEED = Number(cliArg('seed', '0'));
const MEAN = 0.286,
  STD = 0.353;

/** A Gamma(a, 1) draw (Marsaglia–Tsang; a < 1 boosted). */
function gamma(a: number, rand: () => number): number {
  if (a < 1) return gamma(a + 1, rand) * Math.pow(rand(), 1 / a);
  const d = a - 1 / 3,
    c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number, v: number;
    do {
      const u1 = rand() || 1e-12,
        u2 = rand();
      x = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rand();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

function main(): void {
  const splits = prepareSplits();
  const dir = path.dirname(splits.train);
  const images = readIdx(path.join(dir, 'train54k-images-idx3-ubyte.gz')).data;
  const labels = readIdx(path.join(dir, 'train54k-labels-idx1-ubyte.gz')).data;
  const n = labels.length,
    px = 28 * 28;
  const rand = seededRandom(1000 + SEED);
  const x = new Float32Array(n * px);
  const y = new BigInt64Array(n);
  const shifted = (i: number, out: Float32Array) => {
    const dx = KIND === 'mixup' ? 0 : Math.floor(rand() * (2 * SHIFT + 1)) - SHIFT;
    const dy = KIND === 'mixup' ? 0 : Math.floor(rand() * (2 * SHIFT + 1)) - SHIFT;
    for (let r = 0; r < 28; r++)
      for (let c = 0; c < 28; c++) {
        const sr = r - dy,
          sc = c - dx;
        out[r * 28 + c] = sr >= 0 && sr < 28 && sc >= 0 && sc < 28 ? images[i * px + sr * 28 + sc] / 255 : 0;
      }
  };
  const a = new Float32Array(px),
    b = new Float32Array(px);
  for (let i = 0; i < n; i++) {
    shifted(i, a);
    let label = labels[i];
    if (KIND !== 'shift') {
      const j = Math.floor(rand() * n);
      shifted(j, b);
      const g1 = gamma(MIX_A, rand),
        g2 = gamma(MIX_A, rand);
      const lam = g1 / (g1 + g2);
      if (lam < 0.5) label = labels[j];
      for (let p = 0; p < px; p++) a[p] = lam * a[p] + (1 - lam) * b[p];
    }
    for (let p = 0; p < px; p++) x[i * px + p] = (a[p] - MEAN) / STD;
    y[i] = BigInt(label);
  }
  const out = path.join(dir, `train54k-${KIND}${KIND !== 'mixup' ? `-s${SHIFT}` : ''}${KIND !== 'shift' ? `-a${MIX_A}` : ''}-seed${SEED}.npz`);
  fs.writeFileSync(out, encodeNpz({ x: { data: x, shape: [n, 1, 28, 28] }, y: { data: y, shape: [n] } }));
  console.log(out);
}

main();
