// Weight interpolation after the finetune (WiSE-FT style), with the same post-processing for the baseline: the
// fused model finetuned (one epoch, distillation from both parents) and then interpolated λ·F_ft + (1−λ)·X with
// X = the anchor parent (the fused model lives in its basis) or X = the fused start; the better parent finetuned the
// same way and interpolated with itself. λ is chosen per pipeline on val5k (mean over seeds); test10k is reported
// for the chosen λ and for λ = 1 (no interpolation).
//
//   node dist-bench/quality/wise.bench.js [--more examples/vit48c_s22.onnx] [--seeds 0,1,2] [--lambdas 0.5,0.6,0.7,0.8,0.9,1] [--lr 5e-4] [--kd-temp 2]
//        [--kd-alpha 0.5] [--out bench/quality/wise.json]
import fs from 'node:fs';
import path from 'node:path';
import { loadModel, OnnxModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { finetuneModel } from '../../worker/train/finetune';
import { cliArg, writeBenchResults, mean, sampleSd as sd } from '../common';
import { prepareSplits } from './splits';

const A = path.resolve(cliArg('a', 'examples/vit48c_s20.onnx'));
const B = path.resolve(cliArg('b', 'examples/vit48c_s21.onnx'));
/** Further parents (comma-separated): fused too, and teachers of every finetune. */
const MORE = (cliArg('more', '') || '')
  .split(',')
  .filter(Boolean)
  .map((f) => path.resolve(f));
const PARENTS = [A, B, ...MORE];
const SEEDS = cliArg('seeds', '0,1,2').split(',').map(Number);
const LAMBDAS = cliArg('lambdas', '0.5,0.6,0.7,0.8,0.9,1').split(',').map(Number);
const LR = Number(cliArg('lr', '5e-4'));
const T = Number(cliArg('kd-temp', '2'));
const ALPHA = Number(cliArg('kd-alpha', '0.5'));
const OUT = cliArg('out', '');

/** λ·x + (1−λ)·y, weight by weight, for two models with the same graph. */
function interpolate(x: OnnxModel, y: OnnxModel, lambda: number): OnnxModel {
  if (lambda === 1) return x;
  const out = x.clone();
  for (const name of x.initializerNames()) {
    const a = x.getInitializer(name);
    if (a.dataType !== 1) continue; // float tensors only
    const b = y.getInitializer(name).data;
    const v = new Float32Array(a.data.length);
    for (let i = 0; i < v.length; i++) v[i] = lambda * a.data[i] + (1 - lambda) * b[i];
    out.setInitializer(name, v);
  }
  return out;
}

async function main(): Promise<void> {
  const splits = prepareSplits();
  const val = openDataset(splits.val);
  const test = openDataset(splits.test);
  const work = path.resolve('.cache/quality/models');
  fs.mkdirSync(work, { recursive: true });
  const tag = PARENTS.length > 2 ? `${PARENTS.length}m-` : '';
  const fusedPath = path.join(work, `fused-default${tag ? '-' + tag.slice(0, -1) : ''}.onnx`);
  if (!fs.existsSync(fusedPath)) {
    const r = await fuseLoaded({ models: PARENTS.map((f) => loadModel(f)), recipe: resolveRecipe({}), calib: openDataset({ path: splits.calib, limit: 200 }) });
    r.fused.save(fusedPath);
  }
  const fused = loadModel(fusedPath);
  const anchor = loadModel(A);
  const spec = JSON.parse(fs.readFileSync(splits.train, 'utf8'));
  const dir = path.dirname(splits.train);
  const finetuned = async (start: string, what: string, seed: number): Promise<OnnxModel> => {
    const out = path.join(work, `wise-${tag}${what}-${LR}-${T}-${ALPHA}-s${seed}.onnx`);
    if (!fs.existsSync(out))
      await finetuneModel(
        {
          model: start,
          data: { ...spec, path: path.resolve(dir, spec.path), labels: path.resolve(dir, spec.labels) },
          output: out,
          epochs: 1,
          lr: LR,
          seed,
          keep: 'last',
          ...(ALPHA > 0 ? { teachers: PARENTS, kdTemp: T, kdAlpha: ALPHA } : {}),
        },
        {},
      );
    return loadModel(out);
  };
  // pipeline → λ → per-seed val accuracy (and the models, for the test run of the chosen λ)
  const pipelines = ['fused ⊕ anchor', 'fused ⊕ fused start', 'parent ⊕ parent start'] as const;
  const val_: Record<string, number[][]> = Object.fromEntries(pipelines.map((p) => [p, LAMBDAS.map(() => [])]));
  const models: Record<string, OnnxModel[]> = { fused: [], parent: [] };
  for (const seed of SEEDS) {
    const f = await finetuned(fusedPath, 'fused', seed);
    const p = await finetuned(A, 'parent', seed);
    models.fused.push(f);
    models.parent.push(p);
    for (let li = 0; li < LAMBDAS.length; li++) {
      const l = LAMBDAS[li];
      val_['fused ⊕ anchor'][li].push((await evaluateModel(interpolate(f, anchor, l), val, { batchSize: 500 })).accuracy * 100);
      val_['fused ⊕ fused start'][li].push((await evaluateModel(interpolate(f, fused, l), val, { batchSize: 500 })).accuracy * 100);
      val_['parent ⊕ parent start'][li].push((await evaluateModel(interpolate(p, anchor, l), val, { batchSize: 500 })).accuracy * 100);
    }
    console.error(`seed ${seed} done`);
  }
  const report: Record<string, unknown> = {
    parents: PARENTS.map((f) => path.basename(f)),
    seeds: SEEDS,
    lambdas: LAMBDAS,
    lr: LR,
    kdTemp: T,
    kdAlpha: ALPHA,
    pipelines: {},
  };
  for (const p of pipelines) {
    const means = val_[p].map(mean);
    const best = means.indexOf(Math.max(...means));
    const lambda = LAMBDAS[best];
    const testAt = async (l: number): Promise<number[]> => {
      const out: number[] = [];
      for (let s = 0; s < SEEDS.length; s++) {
        const x = p.startsWith('parent') ? models.parent[s] : models.fused[s];
        const y = p === 'fused ⊕ fused start' ? fused : anchor;
        out.push((await evaluateModel(interpolate(x, y, l), test, { batchSize: 500 })).accuracy * 100);
      }
      return out;
    };
    const tChosen = await testAt(lambda);
    const tOne = await testAt(1);
    (report.pipelines as Record<string, unknown>)[p] = {
      val: Object.fromEntries(LAMBDAS.map((l, i) => [l, +means[i].toFixed(2)])),
      lambda,
      test: tChosen.map((x) => +x.toFixed(2)),
      testMean: +mean(tChosen).toFixed(2),
      testSd: +sd(tChosen).toFixed(2),
      testNoInterp: +mean(tOne).toFixed(2),
    };
    console.log(
      `${p}: val by λ ${LAMBDAS.map((l, i) => `${l}:${means[i].toFixed(2)}`).join(' ')} → λ ${lambda}: test ${mean(tChosen).toFixed(2)} ± ${sd(tChosen).toFixed(2)} (λ=1: ${mean(tOne).toFixed(2)})`,
    );
  }
  if (OUT) writeBenchResults(OUT, report);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
