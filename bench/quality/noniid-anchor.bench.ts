// The anchor's weight on the non-IID parents (issue 28): one recipe (the auto-tune's non-IID candidate: exact +
// regmean++, skip-path stream maps, ridge 1e-3) fused with anchorWeight α₀ ∈ --weights, each fused model scored one-shot
// and after 1 epoch of distillation from the parents on the shared 2k set (--seeds seeds; otfuse's finetune
// defaults), on validation (where the choice is made) and on the 10k test set, per class group.
//
//   node $(node scripts/test-one.mjs bench/quality/noniid-anchor.bench.ts) --scenario pair|quad [--weights 0.5,0.7,0.8]
//     [--seeds 3] [--out bench/quality/noniid-anchor-pair.json]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel, type OnnxModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import type { FuseRecipe } from '../../worker/types';
import { cliArg, markdownTable, writeBenchResults, mean, sampleSd as sd } from '../common';
import { distilledSeeds, groupAccuracy, logitsOn, SCENARIO_GROUPS } from './noniid-common';

const SCENARIO = cliArg('scenario', 'pair');
const DIR = path.resolve(cliArg('dir', '.cache/noniid'));
const OUT = cliArg('out');
const SEEDS = Number(cliArg('seeds', '3'));
const WEIGHTS = cliArg('weights', '0.5,0.6,0.7,0.8').split(',').map(Number);
const PARENTS: Record<string, string[]> = { pair: ['pair_a', 'pair_b'], quad: ['quad_0', 'quad_1', 'quad_2', 'quad_3'] };
const GROUPS = SCENARIO_GROUPS[SCENARIO];
const RECIPE: FuseRecipe = { preset: 'exact', refit: 'regmean++', residualPolicy: 'only_resid', refitRidge: 1e-3 };
const val = openDataset(path.join(DIR, 'val.npz'));
const test = openDataset(path.join(DIR, 'test.npz'));
const calib = openDataset(path.join(DIR, 'calib200.npz'));
const SHARED = path.join(DIR, 'shared2k.npz');

interface Scores {
  val: number;
  valGroups: number[];
  test: number;
  testGroups: number[];
}

async function scores(model: OnnxModel): Promise<Scores> {
  const v = groupAccuracy(await logitsOn(model, val), val.labels, GROUPS);
  const t = groupAccuracy(await logitsOn(model, test), test.labels, GROUPS);
  return { val: v.all, valGroups: v.groups, test: t.all, testGroups: t.groups };
}

async function kd(start: string, teachers: string[], work: string, tag: string): Promise<Scores & { testSd: number; seeds: number[] }> {
  const runs = await distilledSeeds(start, teachers, SHARED, work, tag, SEEDS, scores);
  const avg = (f: (s: Scores) => number) => mean(runs.map(f));
  return {
    val: avg((s) => s.val),
    valGroups: GROUPS.map((_, g) => avg((s) => s.valGroups[g])),
    test: avg((s) => s.test),
    testGroups: GROUPS.map((_, g) => avg((s) => s.testGroups[g])),
    testSd: sd(runs.map((s) => s.test)),
    seeds: runs.map((s) => s.test),
  };
}

async function main(): Promise<void> {
  const files0 = PARENTS[SCENARIO].map((n) => path.join(DIR, `${n}.onnx`));
  const parentScores: Scores[] = [];
  for (const f of files0) parentScores.push(await scores(loadModel(f)));
  const best = parentScores.reduce((b, p, i) => (p.val > parentScores[b].val ? i : b), 0);
  const files = [files0[best], ...files0.filter((_, i) => i !== best)];
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-anchor-'));
  const rows: { model: string; oneShot?: Scores; kd?: Awaited<ReturnType<typeof kd>> }[] = [];
  rows.push({
    model: `better parent ${path.basename(files[0], '.onnx')}`,
    oneShot: parentScores[best],
    kd: SEEDS ? await kd(files[0], files, work, 'parent') : undefined,
  });
  for (const w of WEIGHTS) {
    const r = await fuseLoaded({ models: files.map((f) => loadModel(f)), recipe: resolveRecipe({ ...RECIPE, anchorWeight: w }), calib, vanilla: false });
    const file = path.join(work, `fused-${w}.onnx`);
    r.fused.save(file);
    const row = { model: `anchor weight ${w}`, oneShot: await scores(r.fused), kd: SEEDS ? await kd(file, files, work, `aw${w}`) : undefined };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  fs.rmSync(work, { recursive: true, force: true });
  const pct = (x?: number) => (x === undefined ? '' : (100 * x).toFixed(1));
  const g = GROUPS.map((x) => `${x[0]}–${x[x.length - 1]}`);
  console.log(
    markdownTable(
      ['model', 'one-shot val %', 'one-shot test %', ...g.map((x) => `test ${x}`), 'KD val %', 'KD test %', ...g.map((x) => `KD test ${x}`)],
      rows.map((r) => [
        r.model,
        pct(r.oneShot?.val),
        pct(r.oneShot?.test),
        ...GROUPS.map((_, i) => pct(r.oneShot?.testGroups[i])),
        pct(r.kd?.val),
        r.kd ? `${pct(r.kd.test)} ± ${pct(r.kd.testSd)}` : '',
        ...GROUPS.map((_, i) => pct(r.kd?.testGroups[i])),
      ]),
    ),
  );
  if (OUT)
    writeBenchResults(OUT, { kind: 'noniid-anchor', scenario: SCENARIO, groups: GROUPS, recipe: RECIPE, seeds: SEEDS, anchor: path.basename(files[0]), rows });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
