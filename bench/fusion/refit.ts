// Alignment refit (RegMean / RegMean++ after OT alignment) on the bundled vit48 pair (s10 → anchor s11):
// one-shot accuracy per base recipe × refit mode, the ridge chosen on VALIDATION data (the bundled 5k
// Fashion-MNIST *train* images, never the test set), then the chosen settings on the test sets (bundled 2k and
// the full 10k when /usr/share/datasets/fashion-mnist is there). Prints markdown tables.
// Usage: node dist-bench/fusion/refit.js [--quick]
import fs from 'node:fs';
import path from 'node:path';
import { loadModel, OnnxModel } from '../../worker/onnx/model';
import { openDataset, type Dataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import type { FuseRecipe } from '../../worker/types';
import { machine, markdownTable } from '../common';

const EX = path.join(process.cwd(), 'examples');
const FM = '/usr/share/datasets/fashion-mnist';
const full = fs.existsSync(path.join(FM, 't10k-images-idx3-ubyte.gz'));
const val = openDataset(path.join(EX, 'data', 'fmnist-train-5k.json'));
const test2k = openDataset(path.join(EX, 'data', 'fmnist-test-2k.json'));
const test10k = full
  ? openDataset({ path: path.join(FM, 't10k-images-idx3-ubyte.gz'), labels: path.join(FM, 't10k-labels-idx1-ubyte.gz'), mean: [0.286], std: [0.353] })
  : undefined;
const calib = openDataset(path.join(EX, 'calib200.npz'));
const quick = process.argv.includes('--quick');

async function acc(m: OnnxModel, d: Dataset): Promise<number> {
  return (await evaluateModel(m, d, { batchSize: 500, provider: 'cpu' })).accuracy;
}

const bases: [string, FuseRecipe][] = quick
  ? [['default (acts, Sinkhorn 0.08)', {}]]
  : [
      ['default (acts, Sinkhorn 0.08)', {}],
      ['EMD', { solver: 'emd' }],
      ['head-aware EMD (preset exact)', { preset: 'exact' }],
      ['Sinkhorn 0.08, weighted_matrix', { residualPolicy: 'weighted_matrix' }],
    ];
const ridges = quick ? [0.01, 0.1] : [0, 0.001, 0.01, 0.1, 1];

async function main(): Promise<void> {
  console.log(`machine: ${machine()} (shared with other jobs); validation: ${val.size} train images; test: 2k bundled${test10k ? ' + full 10k' : ''}`);
  const s11 = loadModel(path.join(EX, 'vit48_s11.onnx'));
  const s10 = loadModel(path.join(EX, 'vit48_s10.onnx'));
  const pct = (x: number) => (x * 100).toFixed(2);
  const valRows: (string | number)[][] = [];
  const testRows: (string | number)[][] = [];
  for (const [label, m] of [
    ['parent vit48_s11 (anchor)', s11],
    ['parent vit48_s10', s10],
  ] as const) {
    testRows.push([label, '', '', pct(await acc(m, val)), pct(await acc(m, test2k)), test10k ? pct(await acc(m, test10k)) : '—', '']);
  }
  for (const [label, base] of bases) {
    for (const refit of ['none', 'regmean', 'regmean++'] as const) {
      let best: { ridge: number; val: number; fused: OnnxModel; secs: number; refitSecs: number } | undefined;
      for (const ridge of refit === 'none' ? [0] : ridges) {
        const t0 = performance.now();
        const r = await fuseLoaded({ models: [s11, s10], recipe: resolveRecipe({ ...base, refit, refitRidge: ridge }), calib });
        const secs = (performance.now() - t0) / 1000;
        const v = await acc(r.fused, val);
        valRows.push([label, refit, refit === 'none' ? '—' : ridge, pct(v), secs.toFixed(1)]);
        console.error(`${label} refit=${refit} ridge=${ridge}: val ${pct(v)} (${secs.toFixed(1)} s)`);
        if (!best || v > best.val) best = { ridge, val: v, fused: r.fused, secs, refitSecs: r.timings.refit ?? 0 };
      }
      const b = best!;
      testRows.push([
        label,
        refit,
        refit === 'none' ? '—' : b.ridge,
        pct(b.val),
        pct(await acc(b.fused, test2k)),
        test10k ? pct(await acc(b.fused, test10k)) : '—',
        `${b.secs.toFixed(1)} (refit ${b.refitSecs.toFixed(1)})`,
      ]);
    }
  }
  console.log('\n### Ridge sweep on validation (5k train images)\n');
  console.log(markdownTable(['base recipe', 'refit', 'refitRidge', 'val acc %', 'fusion s'], valRows));
  console.log('\n### Chosen ridge (best on validation) on the test sets\n');
  console.log(markdownTable(['model / base recipe', 'refit', 'refitRidge', 'val acc %', 'test 2k %', 'test 10k %', 'fusion s'], testRows));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
