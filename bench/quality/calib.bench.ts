// One-shot fusion of the converged pair vs the calibration set: how many images the alignment and the refit see
// (the first N of the training split, train54k — data the parents were trained on, never val5k or test) and the
// refit's ridge. Scored on val5k only: this is where the recipe of the quality benchmark is chosen.
//
//   node dist-bench/quality/calib.bench.js [--sizes 200,1000,4000] [--ridges 0.01] [--budget-per-image 17]
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { cliArg } from '../common';
import { prepareSplits } from './splits';

const A = path.resolve(cliArg('a', 'examples/vit48c_s20.onnx'));
const B = path.resolve(cliArg('b', 'examples/vit48c_s21.onnx'));
const SIZES = cliArg('sizes', '200,1000,4000').split(',').map(Number);
const RIDGES = cliArg('ridges', '0.01').split(',').map(Number);
const REFITS = cliArg('refits', 'regmean').split(',');
const TOKENS_PER_IMAGE = Number(cliArg('budget-per-image', '17'));

async function main(): Promise<void> {
  const splits = prepareSplits();
  const val = openDataset(splits.val);
  const models = [loadModel(A), loadModel(B)];
  console.log('| calibration images (train54k) | refit | ridge | fuse s | val5k % |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const n of SIZES) {
    const calib = openDataset({ path: splits.train, limit: n });
    for (const refit of REFITS) {
      for (const ridge of refit === 'none' ? [0] : RIDGES) {
        const t = performance.now();
        const recipe = resolveRecipe({
          refit: refit as 'regmean',
          samples: n,
          refitRidge: ridge || undefined,
          tokenBudget: Math.max(8192, n * TOKENS_PER_IMAGE),
        });
        const r = await fuseLoaded({ models, recipe, calib });
        const s = (performance.now() - t) / 1000;
        const acc = (await evaluateModel(r.fused, val, { batchSize: 500 })).accuracy;
        console.log(`| ${n} | ${refit} | ${ridge || '—'} | ${s.toFixed(1)} | ${(acc * 100).toFixed(2)} |`);
      }
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
