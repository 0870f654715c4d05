// BERT fixtures (test/fixtures/bert): one-shot fusion with and without the refit; val.npz for the ridge, test.npz once.
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';

async function main(): Promise<void> {
  const BERT = path.join(process.cwd(), 'test', 'fixtures', 'bert');
  const calib = openDataset(path.join(BERT, 'calib.npz'));
  const val = openDataset(path.join(BERT, 'val.npz'));
  const test = openDataset(path.join(BERT, 'test.npz'));
  const anchor = loadModel(path.join(BERT, 'bertD_s21.onnx'));
  const acc = async (m: typeof anchor, d: typeof val) => ((await evaluateModel(m, d, { provider: 'cpu' })).accuracy * 100).toFixed(2);
  console.log(
    `parents: s21 val ${await acc(anchor, val)} test ${await acc(anchor, test)}; s20 val ${await acc(loadModel(path.join(BERT, 'bertD_s20.onnx')), val)} test ${await acc(loadModel(path.join(BERT, 'bertD_s20.onnx')), test)}`,
  );
  for (const other of ['bertD_s20.onnx', 'bertE_s24.onnx']) {
    for (const [refit, ridge] of [
      ['none', 0],
      ['regmean', 0.01],
      ['regmean', 0.1],
      ['regmean++', 0],
      ['regmean++', 0.01],
    ] as const) {
      const t0 = performance.now();
      const r = await fuseLoaded({
        models: [anchor, loadModel(path.join(BERT, other))],
        recipe: resolveRecipe({ refit, refitRidge: ridge }),
        calib,
        provider: 'cpu',
      });
      const s = (performance.now() - t0) / 1000;
      console.log(
        `${other} → bertD_s21, refit ${refit} ridge ${ridge}: val ${await acc(r.fused, val)} test ${await acc(r.fused, test)} (${s.toFixed(1)} s)${r.vanilla && refit === 'none' ? `; vanilla val ${await acc(r.vanilla, val)} test ${await acc(r.vanilla, test)}` : ''}`,
      );
    }
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
