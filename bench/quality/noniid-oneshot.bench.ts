// One-shot fusion of the non-IID pair (issue 28, item 2): recipe variants side by side on validation, each with
// its accuracy on the class halves (0–4: parent A's home classes, 5–9: B's), and each non-anchor parent alone after
// alignment (weights one-hot: how much of it survives into the anchor's basis). `--test 1` adds the 10k test set
// (for the final table only; the choice is made on validation).
//
//   npm run build --silent && node dist-bench/quality/noniid-oneshot.bench.js [--dir .cache/noniid] [--test 0]
//     [--only name,name] [--out bench/quality/noniid-oneshot.json]
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import type { FuseRecipe } from '../../worker/types';
import { cliArg, machine, markdownTable } from '../common';
import { halves, logitsOn } from './noniid-common';

const DIR = path.resolve(cliArg('dir', '.cache/noniid'));
const OUT = cliArg('out');
const TEST = cliArg('test', '0') === '1';
const ONLY = cliArg('only')?.split(',');
const val = openDataset(path.join(DIR, 'val.npz'));
const test = TEST ? openDataset(path.join(DIR, 'test.npz')) : undefined;
const calib = openDataset(path.join(DIR, 'calib200.npz'));

/** [name, recipe, anchor first?] — `swap` puts the other parent first (the anchor). */
const VARIANTS: [string, FuseRecipe, boolean][] = [
  ['defaults', {}, false],
  ['defaults, anchor swapped', {}, true],
  ['defaults + regmean++', { refit: 'regmean++' }, false],
  ['exact (head-aware EMD) + regmean', { preset: 'exact' }, false],
  ['exact + regmean++', { preset: 'exact', refit: 'regmean++' }, false],
  ['exact + regmean++, weights 0.4 / 0.6', { preset: 'exact', refit: 'regmean++', weights: [0.4, 0.6] }, false],
  ['defaults, weights 0.4 / 0.6', { weights: [0.4, 0.6] }, false],
  ['aligned other parent alone, defaults', { weights: [0, 1] }, false],
  ['aligned other parent alone, exact + regmean++', { preset: 'exact', refit: 'regmean++', weights: [0, 1] }, false],
];

interface Row {
  variant: string;
  val: number;
  valLo: number;
  valHi: number;
  test?: number;
  lo?: number;
  hi?: number;
  cpuSeconds: number;
}

async function main(): Promise<void> {
  const files0 = ['pair_a', 'pair_b'].map((n) => path.join(DIR, `${n}.onnx`));
  const pv = [];
  for (const f of files0) pv.push(halves(await logitsOn(loadModel(f), val), val.labels));
  const best = pv[0].all >= pv[1].all ? 0 : 1;
  const ordered = best === 0 ? files0 : [files0[1], files0[0]];
  const rows: Row[] = [];
  for (const [variant, recipe, swap] of VARIANTS) {
    if (ONLY && !ONLY.includes(variant)) continue;
    const files = swap ? [ordered[1], ordered[0]] : ordered;
    const c0 = process.cpuUsage();
    const r = await fuseLoaded({ models: files.map((f) => loadModel(f)), recipe: resolveRecipe(recipe), calib, vanilla: false });
    const c = process.cpuUsage(c0);
    const v = halves(await logitsOn(r.fused, val), val.labels);
    const row: Row = { variant, val: v.all, valLo: v.lo, valHi: v.hi, cpuSeconds: (c.user + c.system) / 1e6 };
    if (test) {
      const t = halves(await logitsOn(r.fused, test), test.labels);
      Object.assign(row, { test: t.all, lo: t.lo, hi: t.hi });
    }
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  const pct = (x?: number) => (x === undefined ? '' : (100 * x).toFixed(1));
  console.log(
    `\nparents on val (A / B): ${pv.map((p) => `${pct(p.all)} (0–4 ${pct(p.lo)}, 5–9 ${pct(p.hi)})`).join(' / ')}; anchor ${path.basename(ordered[0])}\n`,
  );
  console.log(
    markdownTable(
      ['variant', 'val %', 'val 0–4 %', 'val 5–9 %', '10k test %', 'test 0–4 %', 'test 5–9 %', 'CPU s'],
      rows.map((r) => [r.variant, pct(r.val), pct(r.valLo), pct(r.valHi), pct(r.test), pct(r.lo), pct(r.hi), r.cpuSeconds.toFixed(0)]),
    ),
  );
  if (OUT)
    fs.writeFileSync(
      OUT,
      JSON.stringify({ machine: machine(), date: new Date().toISOString(), parentsVal: pv, anchor: path.basename(ordered[0]), rows }, null, 1) + '\n',
    );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
