// Heterogeneous pair (vit72_s12 → anchor vit48_s11) with and without the refit; full 10k test set when present.
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';

async function main(): Promise<void> {
  const VIT = path.join(process.cwd(), 'test', 'fixtures', 'vit');
  const FM = '/usr/share/datasets/fashion-mnist';
  const calib = openDataset(path.join(VIT, 'calib200.npz'));
  const val = openDataset(path.join(process.cwd(), 'examples', 'data', 'fmnist-train-5k.json'));
  const test = fs.existsSync(path.join(FM, 't10k-images-idx3-ubyte.gz'))
    ? openDataset({ path: path.join(FM, 't10k-images-idx3-ubyte.gz'), labels: path.join(FM, 't10k-labels-idx1-ubyte.gz'), mean: [0.286], std: [0.353] })
    : openDataset(path.join(process.cwd(), 'examples', 'data', 'fmnist-test-2k.json'));
  const models = [loadModel(path.join(VIT, 'vit48_s11.onnx')), loadModel(path.join(VIT, 'vit72_s12.onnx'))];
  for (const refit of ['none', 'regmean', 'regmean++'] as const) {
    const t0 = performance.now();
    const r = await fuseLoaded({ models, recipe: resolveRecipe({ refit }), calib, provider: 'cpu' });
    const s = (performance.now() - t0) / 1000;
    const v = (await evaluateModel(r.fused, val, { batchSize: 500, provider: 'cpu' })).accuracy;
    const t = (await evaluateModel(r.fused, test, { batchSize: 500, provider: 'cpu' })).accuracy;
    console.log(
      `heterogeneous 72→48, refit ${refit} (ridge 0.01): val ${(v * 100).toFixed(2)} %, test (${test.size}) ${(t * 100).toFixed(2)} %, ${s.toFixed(1)} s`,
    );
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
