// Quality of fusion on the models built from PyTorch's own modules (test/fixtures/torch/trained; the opset-14
// exports of the same weights from .cache/torch/trained when scripts/fixtures/torch_fixtures.sh --train ran):
// parents, vanilla averaging and OT fusion (default recipe; the paper's recipe without refit, Sinkhorn and EMD) on
// the 10k Fashion-MNIST test images.
// Run: node dist-bench/fusion/torch-exports.js  (prints a markdown table for BENCHMARKS.md)
import fs from 'node:fs';
import path from 'node:path';
import { loadModel, type OnnxModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { fixturePath, loadGz, TRAINED } from '../../test/graph/torch-fixtures';
import { FMNIST_TEST, VIT } from '../../test/helpers';
import { machine } from '../common';

const PATTERNS = [
  ['tv', 'torchvision VisionTransformer (pre-LN, GELU, nn.MultiheadAttention batch_first)'],
  ['timm', 'timm-style ViT (packed qkv → reshape → unbind)'],
  ['enc_pre_gelu_bf', 'nn.TransformerEncoder pre-LN, GELU, batch_first=True'],
  ['enc_post_relu_sf', 'nn.TransformerEncoder post-LN, ReLU, batch_first=False'],
];

async function main(): Promise<void> {
  const evalSet = openDataset(FMNIST_TEST);
  const calib = openDataset(path.join(VIT, 'calib200.npz'));
  const acc = async (m: OnnxModel) => (await evaluateModel(m, evalSet, { batchSize: 500 })).accuracy;
  const pct = (x: number) => (100 * x).toFixed(2);
  console.log(`machine: ${machine()}`);
  console.log('| pattern | opset | parent s1 | parent s2 | vanilla | OT default | OT paper (no refit) | OT paper EMD | fuse s |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const [name, what] of PATTERNS) {
    for (const opset of [14, 17]) {
      const load = (seed: number) => {
        const cached = path.join('.cache', 'torch', 'trained', `${name}_s${seed}_op${opset}.onnx`);
        if (fs.existsSync(cached)) return loadModel(cached);
        return opset === 17 ? loadGz(fixturePath(TRAINED, `${name}_s${seed}_op17`)) : undefined;
      };
      const a = load(1),
        b = load(2);
      if (!a || !b) continue;
      const t0 = performance.now();
      const r = await fuseLoaded({ models: [a, b], recipe: resolveRecipe({}), calib });
      const seconds = (performance.now() - t0) / 1000;
      const paper = await fuseLoaded({ models: [a, b], recipe: resolveRecipe({ preset: 'paper' }), calib });
      const emd = await fuseLoaded({ models: [a, b], recipe: resolveRecipe({ preset: 'paper', solver: 'emd' }), calib });
      console.log(
        `| ${what} | ${opset} | ${pct(await acc(a))} | ${pct(await acc(b))} | ${pct(await acc(r.vanilla!))} | ${pct(await acc(r.fused))} | ${pct(await acc(paper.fused))} | ${pct(await acc(emd.fused))} | ${seconds.toFixed(1)} |`,
      );
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
