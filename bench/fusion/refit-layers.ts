// Per-layer reconstruction errors of the refit on the bundled vit48 pair (relative, calibration set).
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';

async function main(): Promise<void> {
  const EX = path.join(process.cwd(), 'examples');
  const calib = openDataset(path.join(EX, 'calib200.npz'));
  const models = [loadModel(path.join(EX, 'vit48_s11.onnx')), loadModel(path.join(EX, 'vit48_s10.onnx'))];
  for (const refit of ['regmean', 'regmean++'] as const) {
    const r = await fuseLoaded({ models, recipe: resolveRecipe({ refit, refitRidge: Number(process.argv[2] ?? 0.01) }), calib, provider: 'cpu' });
    console.log(`\n${refit}: layer, error with averaging → after refit`);
    for (const l of r.refit!) console.log(`  ${l.name.padEnd(22)} ${l.errorAverage.toFixed(4)} → ${l.errorRefit.toFixed(4)}`);
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
