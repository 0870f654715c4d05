// Trunk distillation's length, read on validation (issue 28; train/trunkdistill.ts): the partial model K = 3 as
// `otfuse fuse A B --data calib200.npz --merge-layers 3` builds it, distilled for 20 / 40 / 80 / 160 epochs on the
// shared 2k (lr 2e-3, the kept TRUNK_DISTILL settings), seeds 0 and 1, on both trainings of the non-IID pair.
// The distillation alone (no KD after it). Writes bench/quality/trunk-epochs.json (--out).
// Usage: npm run build && node $(node scripts/test-one.mjs bench/quality/trunk-epochs.bench.ts)
//          [--dirs .cache/noniid,.cache/noniid-s1] [--epochs 20,40,80,160] [--seeds 2] [--out FILE]
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { distillTrunk } from '../../worker/train/trunkdistill';
import { logitsOn, halves, partialModelFile } from './noniid-common';
import { cliArg, mean, writeBenchResults } from '../common';

interface EpochRun {
  dir: string;
  epochs: number;
  seed: number;
  val: number;
  test: number;
  mse?: number;
  s: string;
}

/** One row per (training, epochs): means over the seeds (percent). */
function epochRows(runs: EpochRun[]): Record<string, unknown>[] {
  const keys = [...new Set(runs.map((r) => `${r.dir}|${r.epochs}`))];
  return keys.map((k) => {
    const rs = runs.filter((r) => `${r.dir}|${r.epochs}` === k);
    const avg = (f: (r: EpochRun) => number) => mean(rs.map(f));
    return {
      training: rs[0].dir.endsWith('-s1') ? 'second (--seed 1)' : 'first (committed pair)',
      epochs: rs[0].epochs,
      val: avg((r) => r.val) / 100,
      test: avg((r) => r.test) / 100,
      seeds: rs.map((r) => r.test),
      mse: avg((r) => r.mse ?? NaN),
      seconds: avg((r) => Number(r.s)),
    };
  });
}

const EPOCH_COLUMNS = [
  { key: 'training', label: 'training' },
  { key: 'epochs', label: 'epochs' },
  { key: 'val', label: 'val %', format: 'pct' },
  { key: 'test', label: '10k test %', format: 'pct' },
  { key: 'seeds', label: 'test per seed' },
  { key: 'mse', label: 'mse at the cut', format: 'fixed', digits: 5 },
  { key: 'seconds', label: 'seconds', format: 'fixed', digits: 0 },
];

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-trunk-epochs-'));
  const runs: EpochRun[] = [];
  for (const dir of cliArg('dirs', '.cache/noniid,.cache/noniid-s1').split(',')) {
    const A = path.join(dir, 'pair_a.onnx'),
      B = path.join(dir, 'pair_b.onnx');
    const file = path.join(work, `partial-k3-${path.basename(dir)}.onnx`);
    partialModelFile(A, B, path.join(dir, 'calib200.npz'), 3, file, work);
    const p = loadModel(file);
    const val = openDataset(path.join(dir, 'val.npz')),
      test = openDataset(path.join(dir, 'test.npz'));
    for (const epochs of cliArg('epochs', '20,40,80,160').split(',').map(Number)) {
      for (let seed = 0; seed < Number(cliArg('seeds', '2')); seed++) {
        const d = await distillTrunk({ partial: p, teachers: [A, B], data: openDataset(path.join(dir, 'shared2k.npz')), epochs, seed });
        const v = halves(await logitsOn(d.model, val), val.labels!),
          t = halves(await logitsOn(d.model, test), test.labels!);
        const run = {
          dir,
          epochs,
          seed,
          val: +(100 * v.all).toFixed(2),
          test: +(100 * t.all).toFixed(2),
          mse: d.result.mse.at(-1),
          s: d.result.seconds.toFixed(1),
        };
        console.log(JSON.stringify(run));
        runs.push(run);
      }
    }
  }
  writeBenchResults(cliArg('out', 'bench/quality/trunk-epochs.json'), {
    caption: 'Trunk distillation alone for 20–160 epochs (lr 2e-3), partial K = 3 of the non-IID pair, mean of seeds 0 and 1',
    columns: EPOCH_COLUMNS,
    rows: epochRows(runs),
  });
  fs.rmSync(work, { recursive: true, force: true });
}

void main();
