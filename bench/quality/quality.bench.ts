// Fusion quality, honestly: one-shot fusion (vanilla, OT presets, auto-tuned, refit when the engine has it) and
// ≤ 1 epoch of finetuning of the fused model next to the better parent and the vanilla average given the SAME
// finetune, with and without distillation from the parents, against the parents' logit ensemble (the ceiling).
// Every choice (better parent, auto-tuned recipe) is made on validation data (val5k / the calibration slice);
// the official 10k test set is only reported. Finetune seeds: --seeds (default 3), mean ± sd.
//
//   node dist-bench/quality/quality.bench.js [--a A.onnx --b B.onnx] [--seeds 3] [--epochs 1] [--train-limit N]
//        [--lr 2e-4,5e-4,1e-3 (grid: chosen on val5k)] [--kd-temp 2] [--kd-alpha 0.5] [--out .cache/quality/results.json] [--skip-finetune]
import fs from 'node:fs';
import path from 'node:path';
import { loadModel, OnnxModel } from '../../worker/onnx/model';
import { openDataset, Dataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { evaluateEnsemble } from '../../worker/runtime/ensemble';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { autotuneRecipe } from '../../worker/jobs/autotune';
import { finetuneModel, FINETUNE_DEFAULTS } from '../../worker/train/finetune';

import { OtfuseError } from '../../worker/errors';
import type { FuseRecipe } from '../../worker/types';
import { cliArg, cliFlag, writeBenchResults, mean, sampleSd as sd } from '../common';
import { prepareSplits } from './splits';

const A = path.resolve(cliArg('a', 'examples/vit48c_s20.onnx')!);
const B = path.resolve(cliArg('b', 'examples/vit48c_s21.onnx')!);
const SEEDS = Number(cliArg('seeds', '3'));
const EPOCHS = Number(cliArg('epochs', '1'));
const TRAIN_LIMIT = cliArg('train-limit') ? Number(cliArg('train-limit')) : undefined;
const LR_GRID = (cliArg('lr', '2e-4,5e-4,1e-3') ?? '').split(',').map(Number);
const KD_TEMP = Number(cliArg('kd-temp', String(FINETUNE_DEFAULTS.kdTemp)));
const KD_ALPHA = Number(cliArg('kd-alpha', String(FINETUNE_DEFAULTS.kdAlpha)));
const OUT = path.resolve(cliArg('out', '.cache/quality/results.json')!);
const WORK = path.join(path.dirname(OUT), 'models');

interface Row {
  group: string;
  label: string;
  test?: number;
  val?: number;
  seeds?: number[];
  seconds?: number;
  imgPerSec?: number[];
  note?: string;
}

async function acc(model: OnnxModel | string, data: Dataset): Promise<number> {
  return (await evaluateModel(typeof model === 'string' ? loadModel(model) : model, data, { batchSize: 500 })).accuracy;
}

function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function main(): Promise<void> {
  fs.mkdirSync(WORK, { recursive: true });
  const splits = prepareSplits();
  const test = openDataset(splits.test);
  const val = openDataset(splits.val);
  const calib = openDataset(splits.calib);
  const train = TRAIN_LIMIT ? { ...JSON.parse(fs.readFileSync(splits.train, 'utf8')), limit: TRAIN_LIMIT } : undefined;
  const trainArg = train
    ? { ...train, path: path.resolve(path.dirname(splits.train), train.path), labels: path.resolve(path.dirname(splits.train), train.labels) }
    : splits.train;
  const rows: Row[] = [];
  const t0 = performance.now();

  // Parents and their ensemble.
  const parents = [A, B];
  const pv: number[] = [];
  for (const p of parents) {
    const v = await acc(p, val);
    pv.push(v);
    rows.push({ group: 'parents', label: path.basename(p), val: v, test: await acc(p, test) });
    log(`${path.basename(p)}: val ${v}`);
  }
  const better = parents[pv[0] >= pv[1] ? 0 : 1];
  rows.push({
    group: 'parents',
    label: 'logit ensemble (ceiling)',
    val: (await evaluateEnsemble(parents, val)).accuracy,
    test: (await evaluateEnsemble(parents, test)).accuracy,
  });

  // One-shot fusion: presets on the 200 calibration samples (anchor = the better parent on validation).
  const models = [loadModel(better), loadModel(parents.find((p) => p !== better)!)];
  const fit = openDataset({ path: splits.calib, limit: 200 });
  const oneShot: { label: string; recipe: FuseRecipe }[] = [
    { label: 'OT, paper (acts, Sinkhorn 0.08, plain average)', recipe: { preset: 'paper' } },
    { label: 'OT, reference implementation', recipe: { preset: 'reference' } },
    { label: 'OT, exact (EMD, heads as units), no refit', recipe: { preset: 'exact', refit: 'none' } },
    { label: 'OT, weights, no refit', recipe: { preset: 'weights' } },
    { label: 'OT + regmean refit (engine default)', recipe: { preset: 'default', refit: 'regmean' } },
    { label: 'OT + regmean++ refit', recipe: { refit: 'regmean++' } },
    { label: 'OT exact + regmean refit', recipe: { preset: 'exact', refit: 'regmean' } },
  ];

  let vanilla: OnnxModel | undefined;
  for (const o of oneShot) {
    const t = performance.now();
    try {
      const r = await fuseLoaded({ models, recipe: resolveRecipe(o.recipe), calib: fit });
      const seconds = (performance.now() - t) / 1000;
      vanilla ??= r.vanilla;
      rows.push({
        group: 'one-shot',
        label: o.label,
        val: await acc(r.fused, val),
        test: await acc(r.fused, test),
        seconds,
        note: r.timings.refit !== undefined ? `refit ${r.timings.refit.toFixed(2)} s` : undefined,
      });
    } catch (err) {
      if (!(err instanceof OtfuseError) || err.code !== 'UNSUPPORTED') throw err;
      rows.push({ group: 'one-shot', label: o.label, note: `not available: ${err.message}` });
    }
    log(`one-shot ${o.label} done`);
  }
  rows.unshift({ group: 'one-shot', label: 'vanilla average', val: await acc(vanilla!, val), test: await acc(vanilla!, test) });

  // The auto-tuned default (calib1k: fused from the first 200, scored on the next 500).
  const at = await autotuneRecipe(models, calib, { fuse: fuseLoaded });
  const fusedAt = (await fuseLoaded({ models, recipe: resolveRecipe(at.chosen), calib: fit })).fused;
  rows.push({
    group: 'one-shot',
    label: `auto-tuned default → ${at.chosenLabel}`,
    val: await acc(fusedAt, val),
    test: await acc(fusedAt, test),
    seconds: at.seconds,
    note: `sweep ${at.seconds.toFixed(1)} s, ${at.trials.filter((t) => !t.skipped).length} recipes scored on ${at.heldOutSamples} held-out calibration samples`,
  });
  const fusedFile = path.join(WORK, 'fused-autotuned.onnx');
  fusedAt.save(fusedFile);
  const vanillaFile = path.join(WORK, 'vanilla.onnx');
  vanilla!.save(vanillaFile);
  log(`auto-tune chose ${at.chosenLabel} in ${at.seconds.toFixed(1)} s`);

  // The finetune learning rate: chosen on val5k for the fused model with distillation (seed 0); every start then
  // gets that same finetune.
  let LR = LR_GRID[0];
  const lrTrials: { lr: number; val: number }[] = [];
  if (!cliFlag('skip-finetune') && LR_GRID.length > 1) {
    for (const lr of LR_GRID) {
      const out = path.join(WORK, `lr-${lr}.onnx`);
      await finetuneModel(
        { model: fusedFile, data: trainArg, output: out, epochs: EPOCHS, lr, seed: 0, keep: 'last', teachers: parents, kdTemp: KD_TEMP, kdAlpha: KD_ALPHA },
        {},
      );
      lrTrials.push({ lr, val: await acc(out, val) });
      log(`lr ${lr}: val ${lrTrials[lrTrials.length - 1].val}`);
    }
    LR = lrTrials.reduce((a, b) => (b.val > a.val ? b : a)).lr;
  }

  // Finetune matrix: the same ≤ 1 epoch for the fused model, the better parent and vanilla; plain and distilled.
  if (!cliFlag('skip-finetune')) {
    const starts = [
      { label: 'fused (auto-tuned)', file: fusedFile },
      { label: `better parent (${path.basename(better)})`, file: better },
      { label: 'vanilla average', file: vanillaFile },
    ];
    for (const kd of [false, true]) {
      for (const s of starts) {
        const accs: number[] = [];
        const speeds: number[] = [];
        for (let seed = 0; seed < SEEDS; seed++) {
          const out = path.join(WORK, `ft-${starts.indexOf(s)}-${kd ? 'kd' : 'ce'}-${seed}.onnx`);
          const r = await finetuneModel(
            {
              model: s.file,
              data: trainArg,
              output: out,
              epochs: EPOCHS,
              lr: LR,
              seed,
              keep: 'last',
              ...(kd ? { teachers: parents, kdTemp: KD_TEMP, kdAlpha: KD_ALPHA } : {}),
            },
            {},
          );
          accs.push(await acc(out, test));
          speeds.push(r.samplesPerSecond);
          log(
            `finetune ${s.label} ${kd ? 'KD' : 'CE'} seed ${seed}: test ${accs[accs.length - 1]} (${Math.round(r.samplesPerSecond)} img/s, ${r.seconds.toFixed(0)} s)`,
          );
        }
        rows.push({ group: kd ? 'finetune + distillation' : 'finetune', label: s.label, seeds: accs, test: mean(accs), imgPerSec: speeds });
      }
    }
  }
  const result = {
    parents,
    anchor: better,
    seeds: SEEDS,
    epochs: EPOCHS,
    trainLimit: TRAIN_LIMIT ?? 54000,
    lr: LR,
    lrTrials,
    kd: { temperature: KD_TEMP, alpha: KD_ALPHA },
    autotune: at,
    rows,
    seconds: (performance.now() - t0) / 1000,
  };
  writeBenchResults(OUT, result);
  console.log(markdown(result));
}

function pct(v?: number): string {
  return v === undefined ? '—' : (v * 100).toFixed(2);
}

function markdown(r: {
  rows: Row[];
  seeds: number;
  epochs: number;
  trainLimit: number;
  lr: number;
  lrTrials: { lr: number; val: number }[];
  kd: { temperature: number; alpha: number };
}): string {
  const lines = ['| group | model | val5k % | test10k % (mean ± sd over finetune seeds) | notes |', '| --- | --- | --- | --- | --- |'];
  for (const row of r.rows) {
    const t = row.seeds ? `${pct(mean(row.seeds))} ± ${(sd(row.seeds) * 100).toFixed(2)} (${row.seeds.map(pct).join(', ')})` : pct(row.test);
    const note = [
      row.note,
      row.imgPerSec ? `${Math.round(mean(row.imgPerSec))} img/s` : undefined,
      row.seconds !== undefined && !row.note ? `${row.seconds.toFixed(1)} s` : undefined,
    ]
      .filter(Boolean)
      .join('; ');
    lines.push(`| ${row.group} | ${row.label} | ${pct(row.val)} | ${t} | ${note} |`);
  }
  lines.push(
    '',
    `Finetune: ${r.epochs} epoch(s) on ${r.trainLimit} training images, AdamW lr ${r.lr} (chosen on val5k among ${r.lrTrials.map((t) => `${t.lr}: ${pct(t.val)} %`).join(', ') || 'one value'}), batch 128, warm-up 5 %, cosine, last checkpoint kept; distillation from both parents with T ${r.kd.temperature}, α ${r.kd.alpha}.`,
  );
  return lines.join('\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
