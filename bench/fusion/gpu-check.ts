// Device check: fusion with activations and evaluation on the WebGPU provider gives the same fused model and
// accuracy as on CPU. Run on the GPU machine: node dist-bench/fusion/gpu-check.js
import path from 'node:path';
import os from 'node:os';
import fs from 'node:fs';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded, fuseModels } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { evaluateModel } from '../../worker/runtime/evaluate';
import type { ProviderChoice } from '../../worker/runtime/providers';

const VIT = path.join(process.cwd(), 'test', 'fixtures', 'vit');
const evalSet = openDataset(path.join(process.cwd(), 'examples', 'data', 'fmnist-test-2k.json'));
const calib = openDataset(path.join(VIT, 'calib200.npz'));

async function main(): Promise<void> {
  const fused: Record<string, ReturnType<typeof loadModel>> = {};
  for (const provider of ['cpu', 'webgpu'] as ProviderChoice[]) {
    for (const recipe of [{ preset: 'reference' as const }, { preset: 'exact' as const }]) {
      const t0 = performance.now();
      const r = await fuseLoaded({
        models: [loadModel(path.join(VIT, 'vit48_s11.onnx')), loadModel(path.join(VIT, 'vit48_s10.onnx'))],
        recipe: resolveRecipe(recipe),
        calib,
        provider,
      });
      const secs = (performance.now() - t0) / 1000;
      const e = await evaluateModel(r.fused, evalSet, { provider, batchSize: 500 });
      console.log(
        `${provider} ${recipe.preset}: fusion ${secs.toFixed(2)} s (activations ${r.timings.activations.toFixed(2)} s), eval on ${e.provider.used}: acc ${e.accuracy}`,
      );
      fused[`${provider}/${recipe.preset}`] = r.fused;
    }
  }
  for (const preset of ['reference', 'exact']) {
    const a = fused[`cpu/${preset}`],
      b = fused[`webgpu/${preset}`];
    let mx = 0;
    for (const n of a.initializerNames()) {
      const x = a.getInitializer(n).data,
        y = b.getInitializer(n).data;
      for (let i = 0; i < x.length; i++) mx = Math.max(mx, Math.abs(x[i] - y[i]));
    }
    console.log(`${preset}: fused weights cpu vs webgpu max abs diff ${mx.toExponential(2)}`);
  }
  const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-runs-'));
  const { record } = await fuseModels(
    {
      models: [path.join(VIT, 'vit48_s11.onnx'), path.join(VIT, 'vit72_s12.onnx')],
      data: path.join(VIT, 'calib200.npz'),
      evalData: path.join(process.cwd(), 'examples', 'data', 'fmnist-test-2k.json'),
      runsDir,
      provider: 'auto',
    },
    {},
  );
  console.log('auto provider run:', record.provider?.used, record.provider?.reasons.join(' | '));
  console.log(record.metrics.map((m) => `${m.label} ${m.accuracy?.toFixed(4)}`).join('; '), JSON.stringify(record.timings));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
