// One-shot fusion of the non-IID parents (issue 28, item 2): recipe variants side by side on validation, each with
// its accuracy per class group (pair: 0–4 = A's home classes, 5–9 = B's; four parents: each one's home classes),
// and, where asked, each non-anchor parent alone after alignment (weights one-hot: how much of it survives into the
// anchor's basis). The first row is the product's default path: the auto-tune (worker/jobs/autotune.ts) over
// AUTOTUNE_CANDIDATES on a held-out slice of the calibration data, then the fusion with the chosen recipe, as
// `otfuse fuse A B --data calib200.npz` runs it. `--test 1` adds the 10k test set (for the final table only; every
// choice is made on validation).
//
//   npm run build --silent && node dist-bench/quality/noniid-oneshot.bench.js [--scenario pair|quad] [--dir .cache/noniid]
//     [--test 0] [--only 'name;name'] [--aligned 1] [--out bench/quality/noniid-oneshot.json]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel, type OnnxModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { autotuneRecipe, type AutotuneRecord } from '../../worker/jobs/autotune';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { CaptureShare } from '../../worker/fusion/share';
import type { FuseRecipe } from '../../worker/types';
import { cliArg, markdownTable, writeBenchResults } from '../common';
import { groupAccuracy, logitsOn, SCENARIO_GROUPS } from './noniid-common';

const SCENARIO = cliArg('scenario', 'pair');
const DIR = path.resolve(cliArg('dir', '.cache/noniid'));
const OUT = cliArg('out');
const TEST = cliArg('test', '0') === '1';
const ALIGNED = cliArg('aligned', '1') === '1';
const ONLY = cliArg('only')?.split(';');
const PARENTS: Record<string, string[]> = { pair: ['pair_a', 'pair_b'], quad: ['quad_0', 'quad_1', 'quad_2', 'quad_3'] };
const GROUPS = SCENARIO_GROUPS[SCENARIO];
const val = openDataset(path.join(DIR, 'val.npz'));
const test = TEST ? openDataset(path.join(DIR, 'test.npz')) : undefined;
// --calib shared2k: the shared 2k set (its labels unused) as calibration data, all of it (a variant; the issue's
// setting is calib200).
const CALIB = cliArg('calib', 'calib200');
const calib = openDataset(path.join(DIR, `${CALIB}.npz`));

interface Variant {
  name: string;
  recipe: FuseRecipe;
  /** 'auto': the auto-tune picks the recipe (`recipe` are the fields it keeps); rotate: the n-th next parent anchors. */
  autotune?: boolean;
  rotate?: number;
  /** Iterated barycentre: re-align every parent onto the fused model this many times (weights 0 for it). */
  barycentre?: number;
  /** Each non-anchor parent alone after alignment with this recipe (diagnostic rows). */
  aligned?: boolean;
}

const EXACT_PP: FuseRecipe = { preset: 'exact', refit: 'regmean++' };
const VARIANTS: Variant[] = [
  { name: 'default path (auto-tuned)', recipe: {}, autotune: true, aligned: true },
  { name: 'defaults (untuned: Sinkhorn + regmean)', recipe: {}, aligned: true },
  { name: 'defaults, next anchor', recipe: {}, rotate: 1 },
  { name: 'defaults + regmean++', recipe: { refit: 'regmean++' } },
  { name: 'exact + regmean++', recipe: EXACT_PP, aligned: true },
  { name: 'exact + regmean++, next anchor', recipe: EXACT_PP, rotate: 1 },
  { name: 'exact + regmean++, mix confidence', recipe: { ...EXACT_PP, refitMix: 'confidence' }, aligned: true },
  { name: 'exact + regmean++, mix label', recipe: { ...EXACT_PP, refitMix: 'label' } },
  { name: 'defaults + regmean++, mix confidence', recipe: { refit: 'regmean++', refitMix: 'confidence' } },
  { name: 'defaults, mix confidence', recipe: { refitMix: 'confidence' } },
  { name: 'exact + regmean, mix confidence', recipe: { preset: 'exact', refit: 'regmean', refitMix: 'confidence' } },
  { name: 'exact + regmean++, barycentre ×1', recipe: EXACT_PP, barycentre: 1 },
  { name: 'exact + regmean++, barycentre ×2', recipe: EXACT_PP, barycentre: 2 },
  { name: 'exact + regmean++, mix confidence, barycentre ×1', recipe: { ...EXACT_PP, refitMix: 'confidence' }, barycentre: 1 },
  { name: 'exact + regmean++, weights 0.6 / 0.4', recipe: { ...EXACT_PP, weights: [0.6, 0.4] } },
  { name: 'exact + regmean++, weights 0.7 / 0.3', recipe: { ...EXACT_PP, weights: [0.7, 0.3] } },
  { name: 'defaults + regmean++, weights 0.6 / 0.4', recipe: { refit: 'regmean++', weights: [0.6, 0.4] } },
  { name: 'exact + regmean++, ridge 0.001', recipe: { ...EXACT_PP, refitRidge: 0.001 } },
  { name: 'exact + regmean++, ridge 0.0001', recipe: { ...EXACT_PP, refitRidge: 0.0001 } },
  { name: 'exact + regmean++, ridge 0.001, weights 0.7 / 0.3', recipe: { ...EXACT_PP, refitRidge: 0.001, weights: [0.7, 0.3] } },
  { name: 'defaults + regmean++, ridge 0.001', recipe: { refit: 'regmean++', refitRidge: 0.001 } },
  { name: 'exact + regmean++, ridge 0.1', recipe: { ...EXACT_PP, refitRidge: 0.1 } },
  { name: 'defaults + regmean++, ridge 0.1', recipe: { refit: 'regmean++', refitRidge: 0.1 } },
  { name: 'defaults + regmean++, ridge 1', recipe: { refit: 'regmean++', refitRidge: 1 } },
];

interface Scores {
  val: number;
  valGroups: number[];
  test?: number;
  testGroups?: number[];
}
interface Row extends Scores {
  variant: string;
  recipe?: FuseRecipe;
  cpuSeconds: number;
  autotune?: Pick<AutotuneRecord, 'chosenLabel' | 'trials' | 'fitSamples' | 'heldOutSamples'>;
}

async function scores(model: OnnxModel): Promise<Scores> {
  const v = groupAccuracy(await logitsOn(model, val), val.labels, GROUPS);
  const out: Scores = { val: v.all, valGroups: v.groups };
  if (test) {
    const t = groupAccuracy(await logitsOn(model, test), test.labels, GROUPS);
    Object.assign(out, { test: t.all, testGroups: t.groups });
  }
  return out;
}

const cpu = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};

/** The variant's fused model (and the recipe it ran): auto-tuned, plain, or re-aligned onto its own barycentre. */
async function fuseVariant(v: Variant, files: string[], work: string): Promise<{ fused: OnnxModel; recipe: FuseRecipe; autotune?: AutotuneRecord }> {
  const models = files.map((f) => loadModel(f));
  let recipe: FuseRecipe = { ...v.recipe, ...(CALIB !== 'calib200' ? { samples: calib.size } : {}) };
  let autotune: AutotuneRecord | undefined;
  if (v.autotune) {
    const share = new CaptureShare();
    autotune = await autotuneRecipe(models, calib, { fuse: (input) => fuseLoaded({ ...input, share }), base: recipe });
    share.seal();
    recipe = autotune.chosen;
    const r = await fuseLoaded({ models, recipe: resolveRecipe(recipe), calib, vanilla: false, share });
    await share.clear();
    return { fused: r.fused, recipe, autotune };
  }
  let fused = (await fuseLoaded({ models, recipe: resolveRecipe(recipe), calib, vanilla: false })).fused;
  for (let i = 0; i < (v.barycentre ?? 0); i++) {
    // Every parent (the first anchor too) re-aligned onto the current fused model, which itself weighs nothing.
    const file = path.join(work, `bary-${i}.onnx`);
    fused.save(file);
    const weights = [0, ...files.map(() => 1 / files.length)];
    fused = (
      await fuseLoaded({ models: [loadModel(file), ...files.map((f) => loadModel(f))], recipe: resolveRecipe({ ...recipe, weights }), calib, vanilla: false })
    ).fused;
  }
  return { fused, recipe };
}

async function main(): Promise<void> {
  const files0 = PARENTS[SCENARIO].map((n) => path.join(DIR, `${n}.onnx`));
  const parents: Row[] = [];
  for (const f of files0) parents.push({ variant: `parent ${path.basename(f, '.onnx')}`, ...(await scores(loadModel(f))), cpuSeconds: 0 });
  // Anchor: the better parent on validation; the others keep their order.
  const best = parents.reduce((b, p, i) => (p.val > parents[b].val ? i : b), 0);
  const ordered = [files0[best], ...files0.filter((_, i) => i !== best)];
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-oneshot-'));
  const rows: Row[] = [...parents];
  // --extra '[{"name": …, "recipe": {…}, "aligned": true}]': variants beyond the list (exploration).
  const extra = JSON.parse(cliArg('extra', '[]')) as Variant[];
  for (const v of [...VARIANTS, ...extra]) {
    if (ONLY && !ONLY.includes(v.name) && !extra.includes(v)) continue;
    const r = v.rotate ?? 0;
    const files = [...ordered.slice(r), ...ordered.slice(0, r)];
    const c0 = cpu();
    const f = await fuseVariant(v, files, work);
    const row: Row = {
      variant: `${v.name} (anchor ${path.basename(files[0], '.onnx')})`,
      recipe: f.recipe,
      ...(await scores(f.fused)),
      cpuSeconds: cpu() - c0,
    };
    if (f.autotune)
      row.autotune = {
        chosenLabel: f.autotune.chosenLabel,
        trials: f.autotune.trials,
        fitSamples: f.autotune.fitSamples,
        heldOutSamples: f.autotune.heldOutSamples,
      };
    rows.push(row);
    console.log(JSON.stringify({ ...row, autotune: row.autotune?.chosenLabel }));
    for (let k = 1; ALIGNED && v.aligned && k < files.length; k++) {
      const weights = files.map((_, i) => (i === k ? 1 : 0));
      const a = await fuseLoaded({ models: files.map((x) => loadModel(x)), recipe: resolveRecipe({ ...f.recipe, weights }), calib, vanilla: false });
      const ar: Row = { variant: `  aligned ${path.basename(files[k], '.onnx')} alone (${v.name})`, ...(await scores(a.fused)), cpuSeconds: 0 };
      rows.push(ar);
      console.log(JSON.stringify(ar));
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
  const pct = (x?: number) => (x === undefined ? '' : (100 * x).toFixed(1));
  const groupNames = GROUPS.map((g) => `${g[0]}–${g[g.length - 1]}`);
  console.log(`\n${SCENARIO}; anchor ${path.basename(ordered[0])}\n`);
  console.log(
    markdownTable(
      ['variant', 'val %', ...groupNames.map((g) => `val ${g}`), '10k test %', ...groupNames.map((g) => `test ${g}`), 'CPU s'],
      rows.map((r) => [
        r.variant + (r.autotune ? ` → ${r.autotune.chosenLabel}` : ''),
        pct(r.val),
        ...r.valGroups.map(pct),
        pct(r.test),
        ...(r.testGroups ?? GROUPS.map(() => undefined)).map(pct),
        r.cpuSeconds.toFixed(0),
      ]),
    ),
  );
  if (OUT) writeBenchResults(OUT, { scenario: SCENARIO, calib: CALIB, groups: GROUPS, anchor: path.basename(ordered[0]), rows });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
