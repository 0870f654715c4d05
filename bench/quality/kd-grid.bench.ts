// Choosing the distillation finetune on validation data: one start model (the converged pair fused with the engine
// default, or a parent), ≤ 1 epoch on train54k, a grid of (lr, temperature, α), seed 0, scored on val5k only.
// The test set is never read here; the chosen setting is then run for every start by quality.bench.ts.
//
//   node dist-bench/quality/kd-grid.bench.js [--start fused|a|b] [--weights 0.7,0.3] [--grid lr:T:alpha[:batch],…] [--epochs 1] [--threads 1]
//     [--train FILE]   (another training set of train54k's images, e.g. augment.bench.ts's; default train54k)
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { finetuneModel } from '../../worker/train/finetune';
import { cliArg, writeBenchResults } from '../common';
import { prepareSplits } from './splits';

const A = path.resolve(cliArg('a', 'examples/vit48c_s20.onnx'));
const B = path.resolve(cliArg('b', 'examples/vit48c_s21.onnx'));
const START = cliArg('start', 'fused');
const GRID = cliArg('grid', '2e-4:4:0.9,5e-4:4:0.9,1e-3:4:0.9')
  .split(',')
  .map((g) => g.split(':').map(Number));
const EPOCHS = Number(cliArg('epochs', '1'));
const THREADS = Number(cliArg('threads', '1'));
const SEED = Number(cliArg('seed', '0'));
const OUT = path.resolve(cliArg('out', `.cache/quality/kd-grid-${START}.json`));
const TRAIN = cliArg('train');
/** Fusion weights of the fused start (anchor first), e.g. 0.7,0.3; default: equal. */
const WEIGHTS = cliArg('weights', '') ? cliArg('weights', '').split(',').map(Number) : undefined;

async function main(): Promise<void> {
  const splits = prepareSplits();
  const val = openDataset(splits.val);
  const work = path.join(path.dirname(OUT), 'models');
  fs.mkdirSync(work, { recursive: true });
  let start = START === 'a' ? A : START === 'b' ? B : path.join(work, `fused-default${WEIGHTS ? `-w${WEIGHTS.join('_')}` : ''}.onnx`);
  if (START === 'fused') {
    const calib = openDataset({ path: splits.calib, limit: 200 });
    const r = await fuseLoaded({ models: [loadModel(A), loadModel(B)], recipe: resolveRecipe(WEIGHTS ? { weights: WEIGHTS } : {}), calib });
    r.fused.save(start);
  }
  start = path.resolve(start);
  const v0 = (await evaluateModel(loadModel(start), val, { batchSize: 500 })).accuracy;
  const rows: { lr: number; temp: number; alpha: number; batch: number; val: number; seconds: number; imgPerSec: number }[] = [];
  console.log(`start ${START}${WEIGHTS ? ` weights ${WEIGHTS.join('/')}` : ''} (${path.basename(start)}): val5k ${(v0 * 100).toFixed(2)} %`);
  console.log('| lr | T | α | batch | val5k % | s | img/s |\n| --- | --- | --- | --- | --- | --- | --- |');
  for (const [lr, temp, alpha, batch = 128] of GRID) {
    const out = path.join(work, `kd-${START}-${lr}-${temp}-${alpha}-${batch}-s${SEED}${TRAIN ? `-${path.basename(TRAIN, '.npz')}` : ''}.onnx`);
    const r = await finetuneModel(
      {
        model: start,
        data: TRAIN ? path.resolve(TRAIN) : splits.train,
        output: out,
        epochs: EPOCHS,
        lr,
        batchSize: batch,
        seed: SEED,
        keep: 'last',
        threads: THREADS,
        ...(alpha > 0 ? { teachers: [A, B], kdTemp: temp, kdAlpha: alpha } : {}),
      },
      {},
    );
    const v = (await evaluateModel(loadModel(out), val, { batchSize: 500 })).accuracy;
    rows.push({ lr, temp, alpha, batch, val: v, seconds: r.seconds, imgPerSec: r.samplesPerSecond });
    console.log(`| ${lr} | ${temp} | ${alpha} | ${batch} | ${(v * 100).toFixed(2)} | ${r.seconds.toFixed(0)} | ${Math.round(r.samplesPerSecond)} |`);
    writeBenchResults(OUT, { start: START, startVal: v0, epochs: EPOCHS, seed: SEED, train: TRAIN, rows });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
