// Token budget study (issue 16): accuracy of the OT-fused model vs the cap on activation samples × tokens, on the
// real fixtures, measured on VALIDATION data (never test): ViT vit48_s10 → anchor vit48_s11 with calib200.npz
// (200 × 17 = 3,400 tokens), validated on 2,000 images of the fixtures' training hold-out
// (.cache/scale/fmnist_val2000.npz, written by scripts/fixtures/make_scale.py --val-only); BERT bertD_s20 →
// anchor bertD_s21 with calib.npz, validated on val.npz rows 200… (the first 200 are the calibration rows).
// Budgets below a fixture's token count subsample it; three token seeds each. Default recipe otherwise.
// Usage: node dist-bench/scale/budget.bench.js [--budgets 0,256,512,1024,2048] [--seeds 0,1,2] [--out .cache/scale/budget.json]
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { machine } from '../common';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const k = args.indexOf(name);
  return k >= 0 ? args[k + 1] : dflt;
};
const budgets = opt('--budgets', '0,256,512,1024,2048').split(',').map(Number);
const seeds = opt('--seeds', '0,1,2').split(',').map(Number);
const out = opt('--out', '.cache/scale/budget.json');

const VIT = path.join('test', 'fixtures', 'vit');
const BERT = path.join('test', 'fixtures', 'bert');
const cases = [
  {
    name: 'vit48 (s10 → s11)',
    models: [path.join(VIT, 'vit48_s11.onnx'), path.join(VIT, 'vit48_s10.onnx')],
    calib: path.join(VIT, 'calib200.npz'),
    val: { path: '.cache/scale/fmnist_val2000.npz' },
  },
  {
    name: 'bertD (s20 → s21)',
    models: [path.join(BERT, 'bertD_s21.onnx'), path.join(BERT, 'bertD_s20.onnx')],
    calib: path.join(BERT, 'calib.npz'),
    val: { path: path.join(BERT, 'val.npz'), offset: 200 },
  },
];

async function main(): Promise<void> {
  const rows: Record<string, unknown>[] = [];
  for (const c of cases) {
    const models = c.models.map((f) => loadModel(f));
    const calib = openDataset(c.calib),
      val = openDataset(c.val);
    for (const budget of budgets) {
      for (const seed of budget === 0 ? [0] : seeds) {
        const t0 = performance.now();
        const r = await fuseLoaded({ models, recipe: resolveRecipe({ tokenBudget: budget, tokenSeed: seed }), calib });
        const seconds = (performance.now() - t0) / 1000;
        const acc = (await evaluateModel(r.fused, val, { batchSize: 256 })).accuracy;
        const row = { case: c.name, budget, seed, tokens: r.capture?.tokens, accuracy: acc, fuse_s: seconds, timings: r.timings };
        rows.push(row);
        console.log(JSON.stringify(row));
      }
    }
  }
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ machine: machine(), rows }, null, 1));
}

void main();
