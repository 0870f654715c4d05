// Partial fusion on the non-IID pair (issue 28, item 3): the curve over K with the transport map's unmerge (today)
// against fitted unmerge maps (worker/fusion/unmerge.ts: least squares from the fused trunk's stream to each
// parent's own, on the calibration data). Validation by default; `--test 1` adds the 10k test set and its class
// halves (for the final table only). The target at ≤ 1.5× one parent's parameters: parent + 0.75 × (ensemble − parent).
//
//   npm run build --silent && node dist-bench/quality/noniid-partial.bench.js [--dir .cache/noniid] [--scenario pair]
//     [--preset default|exact] [--test 0] [--out bench/quality/noniid-partial.json]
//   other models / data: --models a.onnx,b.onnx --val val.json --calib calib.npz (e.g. the bundled converged pair)
import fs from 'node:fs';
import path from 'node:path';
import { loadModel, type OnnxModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { logitsOn as logits, halves as acc } from './noniid-common';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { buildPartial } from '../../worker/fusion/partial';
import { fitUnmerges } from '../../worker/fusion/unmerge';
import { fitPartialTrunk } from '../../worker/fusion/trunkfit';
import { cliArg, machine, markdownTable } from '../common';

const DIR = path.resolve(cliArg('dir', '.cache/noniid'));
const OUT = cliArg('out');
const TEST = cliArg('test', '0') === '1';
const PRESET = cliArg('preset', 'default');
const ROUNDS = Number(cliArg('rounds', '3'));
const SCENARIOS: Record<string, string[]> = { pair: ['pair_a', 'pair_b'], quad: ['quad_0', 'quad_1', 'quad_2', 'quad_3'] };

const val = openDataset(cliArg('val', path.join(DIR, 'val.npz')));
const test = TEST ? openDataset(path.join(DIR, 'test.npz')) : undefined;
const calib = openDataset(cliArg('calib', path.join(DIR, 'calib200.npz')));

interface Point {
  k: number;
  unmerge: string;
  parameters: number;
  val: number;
  test?: number;
  lo?: number;
  hi?: number;
}

async function point(model: OnnxModel, k: number, unmerge: string): Promise<Point> {
  const p: Point = { k, unmerge, parameters: model.summary().parameterCount, val: acc(await logits(model, val), val.labels).all };
  if (test) {
    const t = acc(await logits(model, test), test.labels);
    Object.assign(p, { test: t.all, lo: t.lo, hi: t.hi });
  }
  return p;
}

async function main(): Promise<void> {
  const name = cliArg('scenario', 'pair');
  const files0 = cliArg('models')?.split(',') ?? SCENARIOS[name].map((n) => path.join(DIR, `${n}.onnx`));
  const vals = [];
  for (const f of files0) vals.push(acc(await logits(loadModel(f), val), val.labels).all);
  const best = vals.indexOf(Math.max(...vals));
  const files = [files0[best], ...files0.filter((_, i) => i !== best)];
  const models = files.map((f) => loadModel(f));
  const recipe = resolveRecipe(PRESET === 'exact' ? { preset: 'exact', refit: 'regmean++', pareto: true } : { pareto: true });
  const r = await fuseLoaded({ models, recipe, calib, vanilla: false });
  const t0 = performance.now();
  const base = { models, plans: r.plans, cutMaps: r.cutMaps!, calib, samples: calib.size };
  const fitted = await fitUnmerges({ ...base, fused: r.fused });
  const fitSeconds = (performance.now() - t0) / 1000;
  // The anchor's own trunk instead of the fused one (its branch's fitted map is the identity).
  const anchorFitted = await fitUnmerges({ ...base, fused: models[0] });
  const points: Point[] = [];
  const cuts: { k: number; trunk: string; model: number; errorMap: number; errorFit: number }[] = [];
  const layers = r.plans[0].layers;
  for (let k = 0; k <= layers; k++) {
    points.push(await point(buildPartial({ ...base, fused: r.fused, k }), k, 'map'));
    if (k > 0 && k < layers) {
      points.push(await point(buildPartial({ ...base, fused: r.fused, k, fitted: fitted[k] }), k, 'fit'));
      points.push(await point(buildPartial({ ...base, fused: models[0], k, fitted: anchorFitted[k] }), k, 'fit, anchor trunk'));
      for (const [trunk, fits] of [
        ['fused', fitted[k]],
        ['anchor', anchorFitted[k]],
      ] as const)
        fits.forEach((f, m) => cuts.push({ k, trunk, model: m, errorMap: f.errorMap, errorFit: f.errorFit }));
      const errs = fitted[k].map((f, m) => `model ${m}: ${f.errorMap.toFixed(3)} → ${f.errorFit.toFixed(3)}`).join(', ');
      console.log(
        `K = ${k}: relative residual of each parent's stream from the fused trunk's (map → fit) ${errs}; from the anchor's: ${anchorFitted[k].map((f) => f.errorFit.toFixed(3)).join(', ')}`,
      );
      if (ROUNDS > 0) {
        const tf = await fitPartialTrunk({ ...base, fused: r.fused, k, rounds: ROUNDS });
        console.log(`K = ${k}: trunk fit, stacked residual by round ${tf.residuals.map((x) => x.toFixed(3)).join(' → ')}`);
        points.push(await point(buildPartial({ ...base, fused: tf.trunk, k, fitted: tf.fitted }), k, 'fit + trunk'));
      }
    }
  }
  const single = models[0].summary().parameterCount;
  const pct = (x?: number) => (x === undefined ? '' : (100 * x).toFixed(1));
  console.log(
    `\n${name}, ${PRESET} recipe, anchor ${path.basename(files[0])}; parents on val ${vals.map(pct).join(' / ')} %; unmerge fit ${fitSeconds.toFixed(1)} s\n`,
  );
  console.log(
    markdownTable(
      ['K', 'unmerge', 'parameters', '× one parent', 'val %', '10k test %', 'classes 0–4 %', 'classes 5–9 %'],
      points.map((p) => [p.k, p.unmerge, p.parameters, (p.parameters / single).toFixed(2), pct(p.val), pct(p.test), pct(p.lo), pct(p.hi)]),
    ),
  );
  if (OUT)
    fs.writeFileSync(
      OUT,
      JSON.stringify(
        { machine: machine(), date: new Date().toISOString(), scenario: name, preset: PRESET, anchor: path.basename(files[0]), parentsVal: vals, points, cuts },
        null,
        1,
      ) + '\n',
    );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
