// Partial fusion on the non-IID scenario (issue 28): the curve over K for every trunk, and the trunk the product
// chooses per K on held-out calibration rows (worker/jobs/partialChoice.ts, as `fuse --pareto` runs it). Trunks,
// each with every branch's unmerge map fitted on all calibration samples:
//   map            the fused trunk with the transport maps' unmerge (no fit; the first version)
//   fused          the fused model's first K blocks + fitted maps
//   anchor         the anchor's own first K blocks + fitted maps
//   fitted/last    fc2 of block K − 1 refit with the maps (the previous trunk fit), from the fused trunk
//   fitted/fused, fitted/anchor   every shared block's attn.o and fc2 refit in order (trunkfit.ts), from either
// and the finer cuts K½ (after block K + 1's attention, before its MLP; `--attention 0` leaves them out).
// Validation by default; `--test 1` adds the 10k test set and its class halves for the parents, the ends, the
// product's choice and each cut's best trunk on validation (the final table only). Every
// choice is the product's (held-out calibration KL) or is read on validation. Target at ≤ 1.5× one parent's
// parameters: better parent + 0.75 × (ensemble − better parent).
//
//   npm run build --silent && node dist-bench/quality/noniid-partial.bench.js [--dir .cache/noniid] [--scenario pair|quad]
//     [--preset default|exact] [--test 0] [--attention 1] [--samples 200] [--ks 1,2,3] [--passes 1] [--out bench/quality/noniid-partial-pair.json]
//   other models / data: --models a.onnx,b.onnx --val val.npz --calib calib.npz (e.g. the bundled converged pair)
import path from 'node:path';
import { loadModel, type OnnxModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { logitsOn as logits, halves as acc } from './noniid-common';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { buildPartial } from '../../worker/fusion/partial';
import { fitUnmerges } from '../../worker/fusion/unmerge';
import { fitPartialTrunk } from '../../worker/fusion/trunkfit';
import { chooseTrunks } from '../../worker/jobs/partialChoice';
import { cliArg, markdownTable, writeBenchResults } from '../common';

const DIR = path.resolve(cliArg('dir', '.cache/noniid'));
const OUT = cliArg('out');
const TEST = cliArg('test', '0') === '1';
const PRESET = cliArg('preset', 'default');
const ATTENTION = cliArg('attention', '1') === '1';
const SAMPLES = cliArg('samples'); // the recipe's calibration samples (default 200)
const KS = cliArg('ks'); // only these inner K (comma-separated; default every one)
const PASSES = Number(cliArg('passes', '1')); // the bench's fitted trunks: passes over the writers (the product: 1)
const SCENARIOS: Record<string, string[]> = { pair: ['pair_a', 'pair_b'], quad: ['quad_0', 'quad_1', 'quad_2', 'quad_3'] };

const val = openDataset(cliArg('val', path.join(DIR, 'val.npz')));
const test = TEST ? openDataset(path.join(DIR, 'test.npz')) : undefined;
const calib = openDataset(cliArg('calib', path.join(DIR, 'calib200.npz')));

interface Scores {
  parameters: number;
  val: number;
  test?: number;
  lo?: number;
  hi?: number;
}
interface Point extends Scores {
  k: number;
  /** The cut after block K + 1's attention (its MLP and above in the branches). */
  attention?: boolean;
  trunk: string;
  /** Relative residual of the parents' streams at the cut (calibration rows), mean over the parents, and each
   * parent's (anchor first): ‖h·U_m + c_m − x_m‖² / ‖x_m − mean‖². */
  residual?: number;
  perParent?: number[];
  kept?: string[];
}

/** Each row's model, for the 10k test scores measured at the end (only the rows the tables read: see main). A
 * symbol key: copied by object spread, left out of the JSON. */
const MODEL = Symbol('model');

async function scores(model: OnnxModel): Promise<Scores> {
  return { parameters: model.summary().parameterCount, val: acc(await logits(model, val), val.labels).all, [MODEL]: model } as Scores;
}

async function withTest(p: Scores): Promise<void> {
  if (!test || p.test !== undefined) return;
  const t = acc(await logits((p as Scores & { [MODEL]: OnnxModel })[MODEL], test), test.labels);
  Object.assign(p, { test: t.all, lo: t.lo, hi: t.hi });
}

const res = (fits: { errorFit: number }[]) => ({
  residual: fits.reduce((s, f) => s + f.errorFit, 0) / fits.length,
  perParent: fits.map((f) => f.errorFit),
});

async function main(): Promise<void> {
  const name = cliArg('scenario', 'pair');
  const files0 = cliArg('models')?.split(',') ?? SCENARIOS[name].map((n) => path.join(DIR, `${n}.onnx`));
  const parents: (Scores & { file: string })[] = [];
  for (const f of files0) parents.push({ file: path.basename(f), ...(await scores(loadModel(f))) });
  const vals = parents.map((p) => p.val);
  const best = vals.indexOf(Math.max(...vals));
  const files = [files0[best], ...files0.filter((_, i) => i !== best)];
  const models = files.map((f) => loadModel(f));
  const recipe = resolveRecipe({
    ...(PRESET === 'exact' ? { preset: 'exact', refit: 'regmean++' } : {}),
    pareto: true,
    ...(SAMPLES ? { samples: Number(SAMPLES) } : {}),
  });
  const r = await fuseLoaded({ models, recipe, calib, vanilla: false });
  const base = { models, plans: r.plans, cutMaps: r.cutMaps!, calib, samples: Math.min(calib.size, recipe.samples) };
  const layers = r.plans[0].layers;
  const fitted = await fitUnmerges({ ...base, fused: r.fused });
  const anchorFitted = await fitUnmerges({ ...base, fused: models[0] });
  const inner = KS ? KS.split(',').map(Number) : Array.from({ length: layers - 1 }, (_, i) => i + 1);
  const t0 = process.cpuUsage();
  const choice = await chooseTrunks({ ...base, fused: r.fused, ks: inner });
  const choiceCpu = (process.cpuUsage(t0).user + process.cpuUsage(t0).system) / 1e6;
  const points: Point[] = [];
  const product: (Scores & { k: number; trunk: string; candidates?: unknown })[] = [];
  for (let k = 0; k <= layers; k++) {
    const mid = k > 0 && k < layers;
    if (mid && !inner.includes(k)) continue;
    points.push({ k, trunk: mid ? 'map' : k === 0 ? 'ensemble' : 'full fusion', ...(await scores(buildPartial({ ...base, fused: r.fused, k }))) });
    if (!mid) continue;
    points.push({ k, trunk: 'fused', ...res(fitted[k]), ...(await scores(buildPartial({ ...base, fused: r.fused, k, fitted: fitted[k] }))) });
    points.push({
      k,
      trunk: 'anchor',
      ...res(anchorFitted[k]),
      ...(await scores(buildPartial({ ...base, fused: models[0], k, fitted: anchorFitted[k] }))),
    });
    for (const [trunk, start, layersArg] of [
      ['fitted/last', r.fused, 'last'],
      ['fitted/fused', r.fused, 'all'],
      ['fitted/anchor', models[0], 'all'],
    ] as const) {
      const tf = await fitPartialTrunk({ ...base, fused: start, k, layers: layersArg, passes: PASSES });
      console.log(`K = ${k}, ${trunk}: stacked residual ${tf.residuals.map((x) => x.toFixed(3)).join(' → ')} (kept: ${tf.kept.join(', ') || 'none'})`);
      const s = await scores(buildPartial({ ...base, fused: tf.trunk, k, fitted: tf.fitted }));
      points.push({ k, trunk, ...res(tf.fitted), kept: tf.kept, ...s });
    }
    const c = choice?.choices.get(k);
    if (c) product.push({ k, trunk: c.kind, candidates: c.candidates, ...(await scores(buildPartial({ ...base, fused: c.trunk, k, fitted: c.fitted }))) });
  }
  // Finer cuts: after block K + 1's attention (K = 0 … layers − 1), every trunk with fitted maps.
  for (let k = 0; ATTENTION && k < layers; k++)
    for (const [trunk, start, rounds] of [
      ['fused', r.fused, 0],
      ['anchor', models[0], 0],
      ['fitted/fused', r.fused, 2],
      ['fitted/anchor', models[0], 2],
    ] as const) {
      const tf = await fitPartialTrunk({ ...base, fused: start, k, attention: true, rounds });
      const s = await scores(buildPartial({ ...base, fused: tf.trunk, k, attention: true, fitted: tf.fitted }));
      console.log(`K = ${k}½, ${trunk}: stacked residual ${tf.residuals.map((x) => x.toFixed(3)).join(' → ')}, ${(100 * s.val).toFixed(1)} % val`);
      points.push({ k, attention: true, trunk, ...res(tf.fitted), kept: tf.kept, ...s });
    }
  // 10k test (the final tables only): the parents, both ends, the product's choice per K, and per cut the best
  // trunk on validation; every other row has validation only.
  if (test) {
    for (const p of [...parents, ...product, ...points.filter((q) => q.trunk === 'ensemble' || q.trunk === 'full fusion')]) await withTest(p);
    const cutsOf = new Map<string, Point[]>();
    for (const p of points) cutsOf.set(`${p.k}${p.attention ? 'a' : ''}`, [...(cutsOf.get(`${p.k}${p.attention ? 'a' : ''}`) ?? []), p]);
    for (const ps of cutsOf.values()) await withTest(ps.reduce((x, y) => (y.val > x.val ? y : x)));
  }
  const single = models[0].summary().parameterCount;
  const pct = (x?: number) => (x === undefined ? '' : (100 * x).toFixed(1));
  const ens = points.find((p) => p.k === 0)!;
  const bestParent = parents[best];
  const target = {
    maxRatio: 1.5,
    val: bestParent.val + 0.75 * (ens.val - bestParent.val),
    ...(test ? { test: bestParent.test! + 0.75 * (ens.test! - bestParent.test!) } : {}),
  };
  console.log(
    `\n${name}, ${PRESET} recipe, anchor ${path.basename(files[0])}; parents on val ${vals.map(pct).join(' / ')} %; trunk choice ${choiceCpu.toFixed(1)} CPU s`,
  );
  console.log(`target at ≤ 1.5×: val ${pct(target.val)} %${test ? `, test ${pct(target.test)} %` : ''}\n`);
  const row = (p: Point | (Scores & { k: number; trunk: string })) => [
    'attention' in p && p.attention ? `${p.k}½` : p.k,
    p.trunk,
    p.parameters,
    (p.parameters / single).toFixed(2),
    'residual' in p && p.residual !== undefined ? p.residual.toFixed(3) : '',
    pct(p.val),
    pct(p.test),
    pct(p.lo),
    pct(p.hi),
  ];
  const header = ['K', 'trunk', 'parameters', '× one parent', 'residual', 'val %', '10k test %', 'classes 0–4 %', 'classes 5–9 %'];
  console.log(markdownTable(header, points.map(row)));
  console.log('\nthe product (trunk chosen per K on held-out calibration rows):\n');
  console.log(markdownTable(header, product.map(row)));
  for (const p of product) console.log(`K = ${p.k}: ${JSON.stringify(p.candidates)}`);
  if (OUT)
    writeBenchResults(OUT, {
      kind: 'noniid-partial',
      scenario: name,
      preset: PRESET,
      samples: base.samples,
      calib: path.basename(calib.source),
      anchor: path.basename(files[0]),
      parents,
      parameters: single,
      target,
      heldOut: choice?.split,
      choiceCpuSeconds: choiceCpu,
      points,
      product,
    });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
