// Ablations of the fusion options on the fixture pairs, one-shot accuracy (no finetune) on the full Fashion-MNIST
// test set (10k) — or the bundled 2k subset when the Debian dataset is missing. Prints a markdown table.
// Usage: node dist-bench/fusion/ablation.js
import fs from 'node:fs';
import path from 'node:path';
import { loadModel, OnnxModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import type { FuseRecipe } from '../../worker/types';
import { machine, markdownTable } from '../common';

const VIT = path.join(process.cwd(), 'test', 'fixtures', 'vit');
const FM = '/usr/share/datasets/fashion-mnist';
const full = fs.existsSync(path.join(FM, 't10k-images-idx3-ubyte.gz'));
const evalSet = openDataset(
  full
    ? { path: path.join(FM, 't10k-images-idx3-ubyte.gz'), labels: path.join(FM, 't10k-labels-idx1-ubyte.gz'), mean: [0.286], std: [0.353] }
    : path.join(process.cwd(), 'examples', 'data', 'fmnist-test-2k.json'),
);
const calib = openDataset(path.join(VIT, 'calib200.npz'));

async function accuracy(m: OnnxModel): Promise<{ accuracy: number; loss: number }> {
  const r = await evaluateModel(m, evalSet, { batchSize: 500, provider: 'cpu' });
  return { accuracy: r.accuracy, loss: r.loss };
}

const groups: [string, FuseRecipe[]][] = [
  ['solver', [{}, { solver: 'emd' }, { reg: 0.02 }, { reg: 0.04 }, { reg: 0.16 }]],
  [
    'alignBy',
    [
      { alignBy: 'wts', reg: 0.06 },
      { alignBy: 'wts', solver: 'emd' },
    ],
  ],
  [
    'residual (Sinkhorn 0.08)',
    ['no_resid', 'only_resid', 'mean', 'weighted_scalar', 'weighted_matrix'].map((r) => ({ residualPolicy: r as FuseRecipe['residualPolicy'] })),
  ],
  [
    'residual (EMD)',
    ['no_resid', 'only_resid', 'mean', 'weighted_scalar', 'weighted_matrix'].map((r) => ({
      solver: 'emd' as const,
      residualPolicy: r as FuseRecipe['residualPolicy'],
    })),
  ],
  ['Q/K (Sinkhorn 0.08)', ['separate', 'joint', 'eq_t_map'].map((q) => ({ qk: q as FuseRecipe['qk'] }))],
  ['Q/K (EMD)', ['separate', 'joint', 'eq_t_map'].map((q) => ({ solver: 'emd' as const, qk: q as FuseRecipe['qk'] }))],
  [
    'tokens / standardisation / cost',
    [{ tokenFilter: 'cls' }, { tokenFilter: 'window' }, { standardize: false }, { costNorm: 'median' }, { groundMetric: 'cosine' }, { samples: 50 }],
  ],
  [
    'head-aware attention maps (ours)',
    [
      { headAware: true },
      { headAware: true, solver: 'emd' },
      { headAware: true, alignBy: 'wts', reg: 0.06 },
      { headAware: true, solver: 'emd', residualPolicy: 'weighted_matrix' },
    ],
  ],
  ['presets', [{ preset: 'reference' }, { preset: 'reference', solver: 'emd' }, { preset: 'exact' }, { preset: 'weights' }]],
];

function describe(r: FuseRecipe): string {
  const parts = Object.entries(r).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(', ') : 'default (acts, Sinkhorn 0.08, mean, separate)';
}

async function main(): Promise<void> {
  console.log(`machine: ${machine()}; evaluation on ${evalSet.size} test images (${full ? 'full Fashion-MNIST test set' : 'bundled 2k subset'})`);
  const s11 = loadModel(path.join(VIT, 'vit48_s11.onnx'));
  const s10 = loadModel(path.join(VIT, 'vit48_s10.onnx'));
  const w72 = loadModel(path.join(VIT, 'vit72_s12.onnx'));
  const rows: (string | number)[][] = [];
  const pct = (x: number) => (x * 100).toFixed(2);
  for (const [label, m] of [
    ['parent vit48_s11 (anchor)', s11],
    ['parent vit48_s10', s10],
    ['parent vit72_s12', w72],
  ] as const) {
    const a = await accuracy(m);
    rows.push(['parents', label, pct(a.accuracy), a.loss.toFixed(3), '']);
  }
  let vanillaDone = false;
  for (const [group, recipes] of groups) {
    for (const recipe of recipes) {
      const t0 = performance.now();
      const r = await fuseLoaded({ models: [s11, s10], recipe: resolveRecipe(recipe), calib });
      const secs = (performance.now() - t0) / 1000;
      if (!vanillaDone && r.vanilla) {
        const v = await accuracy(r.vanilla);
        rows.push(['baseline', 'vanilla averaging (s10 + s11)', pct(v.accuracy), v.loss.toFixed(3), '']);
        vanillaDone = true;
      }
      const a = await accuracy(r.fused);
      rows.push([group, describe(recipe), pct(a.accuracy), a.loss.toFixed(3), secs.toFixed(2)]);
      console.error(`${group}: ${describe(recipe)} → ${pct(a.accuracy)}`);
    }
  }
  for (const recipe of [
    {},
    { solver: 'emd' },
    { preset: 'reference' },
    { alignBy: 'wts', reg: 0.06 },
    { qk: 'eq_t_map' },
    { residualPolicy: 'weighted_scalar' },
    { residualPolicy: 'weighted_matrix' },
    { headAware: true },
    { preset: 'exact' },
  ] as FuseRecipe[]) {
    const t0 = performance.now();
    const r = await fuseLoaded({ models: [s11, w72], recipe: resolveRecipe(recipe), calib });
    const secs = (performance.now() - t0) / 1000;
    const a = await accuracy(r.fused);
    rows.push(['heterogeneous 72→48', describe(recipe), pct(a.accuracy), a.loss.toFixed(3), secs.toFixed(2)]);
    console.error(`het: ${describe(recipe)} → ${pct(a.accuracy)}`);
  }
  console.log(markdownTable(['group', 'setting (s10 → anchor s11 unless stated)', 'accuracy %', 'loss', 'fusion s'], rows));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
