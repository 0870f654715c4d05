// Fusion where it is meant to pay (issue 28): ViT parents (hidden 64, 4 blocks) trained on class-skewed shards of
// Fashion-MNIST (bench/quality/make_noniid.py writes them into .cache/noniid/). For the pair (A: 95 % classes 0–4,
// B the reverse) and the four parents (85 % home classes): every parent, the logit ensemble, vanilla averaging,
// OT one-shot with otfuse's defaults (the anchor: the better parent on validation), each aligned non-anchor parent
// alone (`weights` one-hot: how much of it reached the anchor's basis), the partial-fusion curve over K with
// parameter counts (fitted unmerge maps, as `fuse --pareto` builds them; K chosen on validation under ≤ 1.5× one
// parent's parameters; each inner K also + 1 epoch of distillation), and fused + 1 epoch of distillation on the shared 2k set vs the better parent + the same
// and vanilla + the same (several seeds). All on the 10k test set and its class halves; every choice on the
// validation set.
//
//   /usr/bin/python3 bench/quality/make_noniid.py --which pair && /usr/bin/python3 bench/quality/make_noniid.py --which quad
//   npm run build --silent && node dist-bench/quality/noniid.bench.js [--scenario pair|quad|all] [--seeds 3]
//     [--out bench/quality/noniid-results.json]
import fs from 'node:fs';
import path from 'node:path';
import { loadModel, type OnnxModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { autotuneRecipe } from '../../worker/jobs/autotune';
import { CaptureShare } from '../../worker/fusion/share';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { buildPartial } from '../../worker/fusion/partial';
import { fitUnmerges } from '../../worker/fusion/unmerge';
import { chooseTrunks } from '../../worker/jobs/partialChoice';
import type { FuseRecipe } from '../../worker/types';
import { cliArg, markdownTable, writeBenchResults, mean, sampleSd as sd } from '../common';
import { distilledSeeds, halves, logitsOn } from './noniid-common';

const DIR = path.resolve(cliArg('dir', '.cache/noniid'));
const OUT = path.resolve(cliArg('out', 'bench/quality/noniid-results.json'));
const SEEDS = Number(cliArg('seeds', '3'));
const ALIGNED = cliArg('aligned', '1') !== '0';
const VARIANTS = cliArg('variants', '1') !== '0';
/** Names this run's tables apart from the main ones in BENCHMARKS (e.g. `retrained`: another training of the parents). */
const TAG = cliArg('tag') ?? (path.basename(DIR) === 'noniid' ? undefined : path.basename(DIR));
const SCENARIOS: Record<string, string[]> = { pair: ['pair_a', 'pair_b'], quad: ['quad_0', 'quad_1', 'quad_2', 'quad_3'] };

interface Score {
  val: number;
  test: number;
  lo: number;
  hi: number;
}
interface Row extends Score {
  model: string;
  parameters?: number;
  /** The partial model's trunk (curve rows, 0 < K < layers). */
  trunk?: string;
  sd?: number;
  seeds?: number[];
  /** Curve rows (0 < K < layers): the partial model + 1 epoch KD, as the other starts get it. */
  kd?: Row;
}

const data = {
  val: openDataset(path.join(DIR, 'val.npz')),
  test: openDataset(path.join(DIR, 'test.npz')),
  calib: openDataset(path.join(DIR, 'calib200.npz')),
};
const SHARED = path.join(DIR, 'shared2k.npz');

function scoreOf(val: Float32Array, test: Float32Array): Score {
  const t = halves(test, data.test.labels);
  return { val: halves(val, data.val.labels).all, test: t.all, lo: t.lo, hi: t.hi };
}

async function score(model: OnnxModel): Promise<Score> {
  return scoreOf(await logitsOn(model, data.val), await logitsOn(model, data.test));
}

/** `start` + 1 epoch of distillation from the parents on the shared 2k set, per seed (otfuse's finetune defaults). */
async function kd(start: string, teachers: string[], tag: string, work: string): Promise<Row> {
  const runs = await distilledSeeds(start, teachers, SHARED, work, tag, SEEDS, score);
  const tests = runs.map((r) => r.test);
  return {
    model: `${tag} + 1 epoch KD (shared 2k)`,
    val: mean(runs.map((r) => r.val)),
    test: mean(tests),
    lo: mean(runs.map((r) => r.lo)),
    hi: mean(runs.map((r) => r.hi)),
    sd: sd(tests),
    seeds: tests,
  };
}

/** Variants of the one-shot fusion: every other parent as the anchor, and the exact preset with regmean++. */
function ONE_SHOT_VARIANTS(files: string[]): [string, FuseRecipe, string[]][] {
  const out: [string, FuseRecipe, string[]][] = [];
  for (let i = 1; i < files.length && VARIANTS; i++)
    out.push([`defaults, anchor ${path.basename(files[i], '.onnx')}`, {}, [files[i], ...files.filter((_, j) => j !== i)]]);
  if (VARIANTS) out.push(['exact (head-aware EMD) + regmean++', { preset: 'exact', refit: 'regmean++' }, files]);
  return out;
}

async function scenario(name: string): Promise<{ rows: Row[]; curve: Row[]; chosenK: number; recipe: FuseRecipe; autotune?: unknown }> {
  const files0 = SCENARIOS[name].map((n) => path.join(DIR, `${n}.onnx`));
  const rows: Row[] = [];
  const parentScores: Score[] = [];
  const ensVal = new Float32Array(data.val.size * 10),
    ensTest = new Float32Array(data.test.size * 10);
  for (const f of files0) {
    const [lv, lt] = [await logitsOn(loadModel(f), data.val), await logitsOn(loadModel(f), data.test)];
    lv.forEach((x, i) => (ensVal[i] += x / files0.length));
    lt.forEach((x, i) => (ensTest[i] += x / files0.length));
    const s = scoreOf(lv, lt);
    parentScores.push(s);
    rows.push({ model: `parent ${path.basename(f, '.onnx')}`, ...s });
  }
  // Anchor: the better parent on validation.
  const best = parentScores.reduce((b, s, i) => (s.val > parentScores[b].val ? i : b), 0);
  const files = [files0[best], ...files0.filter((_, i) => i !== best)];
  const models = files.map((f) => loadModel(f));
  const single = models[0].summary().parameterCount;
  rows.push({ model: 'logit ensemble', ...scoreOf(ensVal, ensTest), parameters: single * files.length });
  const t0 = performance.now();
  // The product's default path: the auto-tune picks the recipe on a held-out slice of the calibration data (as
  // `otfuse fuse A B --data calib200.npz` does), then the fusion with it (pareto: the partial curve's cut maps too).
  // --recipe '{…}' fixes a recipe instead (no auto-tune).
  const fixed = cliArg('recipe');
  const share = new CaptureShare();
  const tuned = fixed ? undefined : await autotuneRecipe(models, data.calib, { fuse: (input) => fuseLoaded({ ...input, share }) });
  share.seal();
  const recipe: FuseRecipe = fixed ? (JSON.parse(fixed) as FuseRecipe) : tuned!.chosen;
  const r = await fuseLoaded({ models, recipe: resolveRecipe({ ...recipe, pareto: true }), calib: data.calib, share });
  await share.clear();
  const fuseSeconds = (performance.now() - t0) / 1000;
  rows.push({ model: 'vanilla average', ...(await score(r.vanilla!)), parameters: single });
  rows.push({
    model: `OT one-shot, ${fixed ? `recipe ${fixed}` : `default path (auto-tuned: ${tuned!.chosenLabel})`} (anchor ${path.basename(files[0], '.onnx')}; ${fuseSeconds.toFixed(0)} s)`,
    ...(await score(r.fused)),
    parameters: single,
  });
  // One-shot ideas, measured (issue 28 item 2; validation decides): the other anchor(s), and exact head-aware EMD with
  // regmean++ (the refit level by level on the fused model's own inputs).
  for (const [label, recipe, order] of ONE_SHOT_VARIANTS(files)) {
    const v = await fuseLoaded({ models: order.map((f) => loadModel(f)), recipe: resolveRecipe(recipe), calib: data.calib, vanilla: false });
    rows.push({ model: `OT one-shot, ${label} (variant)`, ...(await score(v.fused)), parameters: single });
  }
  // Each non-anchor parent alone after alignment (weights one-hot: no averaging, the refit towards it alone).
  for (let k = 1; ALIGNED && k < models.length; k++) {
    const weights: FuseRecipe['weights'] = models.map((_, i) => (i === k ? 1 : 0));
    const a = await fuseLoaded({ models, recipe: resolveRecipe({ ...recipe, weights }), calib: data.calib, vanilla: false });
    rows.push({ model: `aligned ${path.basename(files[k], '.onnx')} alone (diagnostic)`, ...(await score(a.fused)) });
  }
  // The partial-fusion curve, as `fuse --pareto` builds it: the trunk chosen per K on held-out calibration rows
  // (worker/jobs/partialChoice.ts: fused / the anchor's own / fitted), fitted unmerge maps at the cut.
  const fitted = await fitUnmerges({ models, plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, calib: data.calib, samples: data.calib.size });
  const layers = r.plans[0].layers;
  const ks = Array.from({ length: layers - 1 }, (_, i) => i + 1);
  const chosenTrunks = await chooseTrunks({ models, plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, calib: data.calib, samples: data.calib.size, ks });
  const curve: Row[] = [];
  const work = path.join(DIR, 'work');
  fs.mkdirSync(work, { recursive: true });
  for (let k = 0; k <= layers; k++) {
    const c = chosenTrunks?.choices.get(k);
    const p = buildPartial({ models, plans: r.plans, fused: c?.trunk ?? r.fused, cutMaps: r.cutMaps!, k, fitted: c?.fitted ?? fitted[k] });
    const row: Row = { model: `K = ${k}`, trunk: c?.kind, parameters: p.summary().parameterCount, ...(await score(p)) };
    // Each inner K + the same finetune as every other start (1 epoch KD from the parents on the shared 2k).
    if (SEEDS > 0 && k > 0 && k < layers) {
      const file = path.join(work, `${name}-partial-k${k}.onnx`);
      p.save(file);
      row.kd = await kd(file, files, `${name} partial K = ${k}`, work);
    }
    curve.push(row);
  }
  const eligible = curve.filter((c) => c.parameters! <= 1.5 * single);
  const chosen = eligible.reduce((b, c) => (c.val > b.val ? c : b), eligible[0]);
  const chosenK = curve.indexOf(chosen);
  rows.push({ ...chosen, model: `partial fusion, K = ${chosenK} (chosen on val, ≤ 1.5× one parent)` });
  if (SEEDS > 0) {
    const fusedFile = path.join(work, `${name}-fused.onnx`);
    r.fused.save(fusedFile);
    rows.push(await kd(fusedFile, files, `${name} fused`, work));
    rows.push(await kd(files[0], files, `${name} better parent`, work));
    const vanillaFile = path.join(work, `${name}-vanilla.onnx`);
    r.vanilla!.save(vanillaFile);
    rows.push(await kd(vanillaFile, files, `${name} vanilla`, work));
  }
  return { rows, curve, chosenK, recipe, autotune: tuned && { chosenLabel: tuned.chosenLabel, trials: tuned.trials } };
}

const pct = (x: number) => (100 * x).toFixed(1);

async function main(): Promise<void> {
  const which = cliArg('scenario', 'all');
  const names = which === 'all' ? Object.keys(SCENARIOS) : [which];
  const results: Record<string, unknown> = {};
  for (const name of names) {
    const res = await scenario(name);
    results[name] = res;
    console.log(`\n### ${name}\n`);
    console.log(
      markdownTable(
        ['model', 'val %', '10k test %', 'classes 0–4 %', 'classes 5–9 %', 'parameters'],
        res.rows.map((r) => [
          r.model,
          pct(r.val),
          r.sd !== undefined ? `${pct(r.test)} ± ${pct(r.sd)}` : pct(r.test),
          pct(r.lo),
          pct(r.hi),
          r.parameters ?? '',
        ]),
      ),
    );
    console.log(`\npartial fusion curve (${name}):\n`);
    console.log(
      markdownTable(
        ['K', 'parameters', 'val %', '10k test %', 'classes 0–4 %', 'classes 5–9 %', '+ 1 epoch KD: val %', 'test %'],
        res.curve.map((c, k) => [
          k,
          c.parameters!,
          pct(c.val),
          pct(c.test),
          pct(c.lo),
          pct(c.hi),
          c.kd ? pct(c.kd.val) : '',
          c.kd ? `${pct(c.kd.test)} ± ${pct(c.kd.sd!)}` : '',
        ]),
      ),
    );
    writeBenchResults(OUT, { seeds: SEEDS, ...(TAG ? { tag: TAG } : {}), results });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
