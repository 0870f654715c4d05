// A finetune "soup" within one epoch: the start model is finetuned P times, each run on its own 1/P of train54k
// (seed p, the same lr / distillation), and the P results are averaged weight by weight (they share the start, so
// they sit in one basin). Total data and compute = one epoch, as for a single run. Scored on val5k only.
//
//   node dist-bench/quality/soup.bench.js [--start fused|a|b] [--parts 3] [--lr 5e-4] [--kd-temp 2] [--kd-alpha 0.5]
import fs from 'node:fs';
import path from 'node:path';
import { loadModel, OnnxModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { finetuneModel } from '../../worker/train/finetune';
import { cliArg } from '../common';
import { prepareSplits } from './splits';

const A = path.resolve(cliArg('a', 'examples/vit48c_s20.onnx'));
const B = path.resolve(cliArg('b', 'examples/vit48c_s21.onnx'));
const START = cliArg('start', 'fused');
const PARTS = Number(cliArg('parts', '3'));
const LR = Number(cliArg('lr', '5e-4'));
const T = Number(cliArg('kd-temp', '2'));
const ALPHA = Number(cliArg('kd-alpha', '0.5'));
const TRAIN = 54000;

/** Uniform average of models with the same graph. */
export function averageModels(models: OnnxModel[]): OnnxModel {
  const out = models[0].clone();
  for (const name of models[0].initializerNames()) {
    const base = models[0].getInitializer(name);
    if (!(base.data instanceof Float32Array)) continue;
    const acc = new Float64Array(base.data.length);
    for (const m of models) {
      const d = m.getInitializer(name).data as Float32Array;
      for (let i = 0; i < acc.length; i++) acc[i] += d[i] / models.length;
    }
    out.setInitializer(name, Float32Array.from(acc));
  }
  return out;
}

async function main(): Promise<void> {
  const splits = prepareSplits();
  const val = openDataset(splits.val);
  const work = path.resolve('.cache/quality/models');
  fs.mkdirSync(work, { recursive: true });
  let start = START === 'a' ? A : START === 'b' ? B : path.join(work, 'fused-default.onnx');
  if (START === 'fused' && !fs.existsSync(start)) {
    const r = await fuseLoaded({ models: [loadModel(A), loadModel(B)], recipe: resolveRecipe({}), calib: openDataset({ path: splits.calib, limit: 200 }) });
    r.fused.save(start);
  }
  start = path.resolve(start);
  const spec = JSON.parse(fs.readFileSync(splits.train, 'utf8'));
  const dir = path.dirname(splits.train);
  const parts: OnnxModel[] = [];
  const accs: number[] = [];
  for (let p = 0; p < PARTS; p++) {
    const out = path.join(work, `soup-${START}-${PARTS}-${LR}-${T}-${ALPHA}-p${p}.onnx`);
    const size = Math.floor(TRAIN / PARTS);
    await finetuneModel(
      {
        model: start,
        data: { ...spec, path: path.resolve(dir, spec.path), labels: path.resolve(dir, spec.labels), offset: p * size, limit: size },
        output: out,
        epochs: 1,
        lr: LR,
        seed: p,
        keep: 'last',
        threads: 1,
        ...(ALPHA > 0 ? { teachers: [A, B], kdTemp: T, kdAlpha: ALPHA } : {}),
      },
      {},
    );
    parts.push(loadModel(out));
    accs.push((await evaluateModel(parts[p], val, { batchSize: 500 })).accuracy);
  }
  const soup = averageModels(parts);
  const v = (await evaluateModel(soup, val, { batchSize: 500 })).accuracy;
  console.log(
    `start ${START} parts ${PARTS} lr ${LR} T ${T} α ${ALPHA}: parts val ${accs.map((a) => (a * 100).toFixed(2)).join(', ')} → soup val ${(v * 100).toFixed(2)} %`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
