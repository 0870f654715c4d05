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
import { openDataset, type Dataset } from '../../worker/data/dataset';
import { ModelRunner } from '../../worker/runtime/runner';
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

async function logits(model: OnnxModel, d: Dataset): Promise<Float32Array> {
  const runner = await ModelRunner.create(model, { provider: 'cpu' });
  try {
    const binding = runner.bind(d);
    const out = new Float32Array(d.size * 10);
    for (let i = 0; i < d.size; i += 500) {
      const idx = Array.from({ length: Math.min(500, d.size - i) }, (_, j) => i + j);
      const r = await runner.run(d.take(idx), binding, [runner.outputNames[0]]);
      out.set(r[runner.outputNames[0]].data as Float32Array, i * 10);
    }
    return out;
  } finally {
    await runner.release();
  }
}

function acc(l: Float32Array, labels: Int32Array): { all: number; lo: number; hi: number } {
  const hit = [0, 0],
    n = [0, 0];
  for (let i = 0; i < labels.length; i++) {
    let arg = 0;
    for (let c = 1; c < 10; c++) if (l[i * 10 + c] > l[i * 10 + arg]) arg = c;
    const g = labels[i] < 5 ? 0 : 1;
    n[g]++;
    if (arg === labels[i]) hit[g]++;
  }
  return { all: (hit[0] + hit[1]) / labels.length, lo: hit[0] / n[0], hi: hit[1] / n[1] };
}

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
  const fitted = await fitUnmerges({ models, plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, calib, samples: calib.size });
  const fitSeconds = (performance.now() - t0) / 1000;
  const points: Point[] = [];
  const layers = r.plans[0].layers;
  for (let k = 0; k <= layers; k++) {
    points.push(await point(buildPartial({ models, plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, k }), k, 'map'));
    if (k > 0 && k < layers) {
      points.push(await point(buildPartial({ models, plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, k, fitted: fitted[k] }), k, 'fit'));
      const errs = fitted[k].map((f, m) => `model ${m}: ${f.errorMap.toFixed(3)} → ${f.errorFit.toFixed(3)}`).join(', ');
      console.log(`K = ${k}: relative residual at the cut (map → fit) ${errs}`);
      const tf = await fitPartialTrunk({ models, plans: r.plans, fused: r.fused, cutMaps: r.cutMaps!, calib, samples: calib.size, k, rounds: ROUNDS });
      console.log(`K = ${k}: trunk fit, stacked residual by round ${tf.residuals.map((x) => x.toFixed(3)).join(' → ')}`);
      points.push(await point(buildPartial({ models, plans: r.plans, fused: tf.trunk, cutMaps: r.cutMaps!, k, fitted: tf.fitted }), k, 'fit + trunk'));
    }
  }
  const single = models[0].summary().parameterCount;
  const pct = (x?: number) => (x === undefined ? '' : (100 * x).toFixed(1));
  console.log(`\n${name}, ${PRESET} recipe, anchor ${path.basename(files[0])}; unmerge fit ${fitSeconds.toFixed(1)} s\n`);
  console.log(
    markdownTable(
      ['K', 'unmerge', 'parameters', '× one parent', 'val %', '10k test %', 'classes 0–4 %', 'classes 5–9 %'],
      points.map((p) => [p.k, p.unmerge, p.parameters, (p.parameters / single).toFixed(2), pct(p.val), pct(p.test), pct(p.lo), pct(p.hi)]),
    ),
  );
  if (OUT)
    fs.writeFileSync(OUT, JSON.stringify({ machine: machine(), date: new Date().toISOString(), scenario: name, preset: PRESET, points }, null, 1) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
