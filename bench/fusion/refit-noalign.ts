// Control for the refit: the same closed-form refit on UNALIGNED parents (every transport map replaced by the
// identity, i.e. RegMean on plain averaging) — does OT alignment still matter once layers are refit?
// Usage: node dist-bench/fusion/refit-noalign.js
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { identityMap } from '../../worker/fusion/maps';

async function main(): Promise<void> {
  const EX = path.join(process.cwd(), 'examples');
  const FM = '/usr/share/datasets/fashion-mnist';
  const calib = openDataset(path.join(EX, 'calib200.npz'));
  const val = openDataset(path.join(EX, 'data', 'fmnist-train-5k.json'));
  const test = fs.existsSync(path.join(FM, 't10k-images-idx3-ubyte.gz'))
    ? openDataset({ path: path.join(FM, 't10k-images-idx3-ubyte.gz'), labels: path.join(FM, 't10k-labels-idx1-ubyte.gz'), mean: [0.286], std: [0.353] })
    : openDataset(path.join(EX, 'data', 'fmnist-test-2k.json'));
  const models = [loadModel(path.join(EX, 'vit48_s11.onnx')), loadModel(path.join(EX, 'vit48_s10.onnx'))];
  for (const refit of ['none', 'regmean', 'regmean++'] as const) {
    for (const ridge of refit === 'none' ? [0] : [0, 0.01, 0.1]) {
      const r = await fuseLoaded({
        models,
        recipe: resolveRecipe({ refit, refitRidge: ridge }),
        calib,
        provider: 'cpu',
        tamper: (_k, _name, map) => identityMap(map.n),
      });
      const v = (await evaluateModel(r.fused, val, { batchSize: 500, provider: 'cpu' })).accuracy;
      const t = (await evaluateModel(r.fused, test, { batchSize: 500, provider: 'cpu' })).accuracy;
      console.log(`no alignment (identity maps), refit ${refit}, ridge ${ridge}: val ${(v * 100).toFixed(2)} %, test (${test.size}) ${(t * 100).toFixed(2)} %`);
    }
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
