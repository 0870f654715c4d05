// Timing of the refit alone on the bundled vit48 pair (used while developing; prints seconds per stage).
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';

async function main(): Promise<void> {
  const EX = path.join(process.cwd(), 'examples');
  const calib = openDataset(path.join(EX, 'calib200.npz'));
  const models = [loadModel(path.join(EX, 'vit48_s11.onnx')), loadModel(path.join(EX, 'vit48_s10.onnx'))];
  for (const refit of ['none', 'regmean', 'regmean++'] as const) {
    const r = await fuseLoaded({ models, recipe: resolveRecipe({ refit }), calib, provider: (process.argv[2] as 'cpu') ?? 'cpu' });
    console.log(refit, JSON.stringify(Object.fromEntries(Object.entries(r.timings).map(([k, v]) => [k, +v.toFixed(2)]))));
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
