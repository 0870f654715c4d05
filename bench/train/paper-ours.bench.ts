// The paper's headline with our own fusion: fuse s10 → anchor s11 with otfuse's best one-shot settings, then give
// the fused model, the vanilla average and the better parent the same short finetune; 10k test accuracy.
// Usage: node dist-bench/train/paper-ours.bench.js [preset=exact|emd-wm|default] [seeds=0,1,2] [lr=5e-4] [batch=32]
import fs from 'node:fs';
import path from 'node:path';
import { fuseModels } from '../../worker/jobs/run';
import { finetuneModel } from '../../worker/train/finetune';
import type { DatasetSpec, FuseRecipe } from '../../worker/types';

const FM = '/usr/share/datasets/fashion-mnist';
const norm = { mean: [0.286], std: [0.353] };
const TRAIN: DatasetSpec = { path: `${FM}/train-images-idx3-ubyte.gz`, labels: `${FM}/train-labels-idx1-ubyte.gz`, ...norm };
const TEST: DatasetSpec = { path: `${FM}/t10k-images-idx3-ubyte.gz`, labels: `${FM}/t10k-labels-idx1-ubyte.gz`, ...norm };
const VIT = path.join(process.cwd(), 'test/fixtures/vit');
const OUT = path.join(process.cwd(), '.cache/bench-paper-ours');

const RECIPES: Record<string, FuseRecipe> = {
  exact: { preset: 'exact' },
  'emd-wm': { solver: 'emd', residualPolicy: 'weighted_matrix' },
  default: {},
};

function arg(name: string, fallback: string): string {
  const hit = process.argv.slice(2).find((a) => a.startsWith(`${name}=`));
  return hit ? hit.slice(name.length + 1) : fallback;
}

async function main(): Promise<void> {
  const preset = arg('preset', 'exact');
  const seeds = arg('seeds', '0').split(',').map(Number);
  const lr = Number(arg('lr', '5e-4'));
  const batchSize = Number(arg('batch', '32'));
  const models = arg('models', 'fused,vanilla,vit48_s11').split(',');
  fs.mkdirSync(OUT, { recursive: true });
  const fused = await fuseModels({
    models: [path.join(VIT, 'vit48_s11.onnx'), path.join(VIT, 'vit48_s10.onnx')],
    data: path.join(VIT, 'calib200.npz'),
    evalData: TEST,
    recipe: { ...RECIPES[preset], name: `paper-${preset}` },
    runsDir: OUT,
  });
  const oneShot = fused.record.metrics.find((m) => m.label === 'ot')?.accuracy;
  console.log(JSON.stringify({ preset, oneShot }));
  const files: Record<string, string> = {
    fused: path.join(fused.runDir, 'fused.onnx'),
    vanilla: path.join(VIT, 'vit48_vanilla.onnx'),
    vit48_s11: path.join(VIT, 'vit48_s11.onnx'),
    vit48_s10: path.join(VIT, 'vit48_s10.onnx'),
  };
  for (const name of models) {
    for (const seed of seeds) {
      const r = await finetuneModel(
        {
          model: files[name],
          data: TRAIN,
          evalData: TEST,
          output: path.join(OUT, `${preset}-${name}-${seed}.onnx`),
          epochs: 1,
          batchSize,
          lr,
          weightDecay: 0.01,
          clipNorm: 1,
          seed,
          keep: 'last',
        },
        {},
      );
      console.log(JSON.stringify({ preset, model: name, seed, lr, batchSize, after: r.evals[0].accuracy, seconds: Math.round(r.seconds) }));
    }
  }
}

void main();
