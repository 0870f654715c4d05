// The BERT pair (test/fixtures/bert, fortunes, 8 classes): fused + finetune against both parents, the better
// parent (on val.npz) and the vanilla average given the same finetune, with and without distillation from the
// parents, and the parents' logit ensemble. Choices on val.npz; test.npz only reported. Seeds: --seeds (3).
//
//   node dist-bench/quality/bert.bench.js [--seeds 3] [--lr 1e-3] [--modes ce,kd] [--out .cache/quality/bert.json]
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
import { cliArg, writeBenchResults, mean, sampleSd as sd } from '../common';

const DIR = path.resolve('test/fixtures/bert');
const SEEDS = Number(cliArg('seeds', '3'));
const LR = Number(cliArg('lr', '1e-3'));
const MODES = (cliArg('modes', 'ce,kd') ?? '').split(',');
const OUT = path.resolve(cliArg('out', '.cache/quality/bert.json')!);
const WORK = path.join(path.dirname(OUT), 'bert-models');

const pct = (v: number) => (v * 100).toFixed(2);
const acc = async (m: OnnxModel | string, d: Dataset) => (await evaluateModel(typeof m === 'string' ? loadModel(m) : m, d, { batchSize: 256 })).accuracy;
const log = (msg: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

async function main(): Promise<void> {
  fs.mkdirSync(WORK, { recursive: true });
  const parents = ['bertD_s20.onnx', 'bertD_s21.onnx'].map((f) => path.join(DIR, f));
  const val = openDataset(path.join(DIR, 'val.npz'));
  const test = openDataset(path.join(DIR, 'test.npz'));
  const lines = [
    '| model | one-shot test % | finetune: test % mean ± sd (seeds) | finetune + distillation: test % mean ± sd (seeds) |',
    '| --- | --- | --- | --- |',
  ];
  const pv = [await acc(parents[0], val), await acc(parents[1], val)];
  const better = parents[pv[0] >= pv[1] ? 0 : 1];
  const models = [loadModel(better), loadModel(parents.find((p) => p !== better)!)];
  const calib = openDataset(path.join(DIR, 'calib.npz'));
  const at = await autotuneRecipe(models, calib, { fuse: fuseLoaded });
  log(`auto-tune: ${at.chosenLabel} in ${at.seconds.toFixed(1)} s`);
  const r = await fuseLoaded({ models, recipe: resolveRecipe(at.chosen), calib });
  const fusedFile = path.join(WORK, 'fused.onnx');
  const vanillaFile = path.join(WORK, 'vanilla.onnx');
  r.fused.save(fusedFile);
  r.vanilla!.save(vanillaFile);
  const ens = await evaluateEnsemble(parents, test);
  const starts = [
    { label: `fused (auto-tuned: ${at.chosenLabel})`, file: fusedFile },
    { label: `better parent on val (${path.basename(better)})`, file: better },
    { label: `other parent (${path.basename(parents.find((p) => p !== better)!)})`, file: parents.find((p) => p !== better)! },
    { label: 'vanilla average', file: vanillaFile },
  ];
  const results: Record<string, unknown>[] = [];
  for (const s of starts) {
    const cells: string[] = [pct(await acc(s.file, test))];
    for (const mode of ['ce', 'kd']) {
      if (!MODES.includes(mode)) {
        cells.push('—');
        continue;
      }
      const accs: number[] = [];
      const speeds: number[] = [];
      for (let seed = 0; seed < SEEDS; seed++) {
        const out = path.join(WORK, `ft-${starts.indexOf(s)}-${mode}-${seed}.onnx`);
        const f = await finetuneModel(
          {
            model: s.file,
            data: path.join(DIR, 'train.npz'),
            output: out,
            epochs: 1,
            batchSize: 32,
            lr: LR,
            seed,
            keep: 'last',
            ...(mode === 'kd' ? { teachers: parents } : {}),
          },
          {},
        );
        accs.push(await acc(out, test));
        speeds.push(f.samplesPerSecond);
        log(`${s.label} ${mode} seed ${seed}: ${accs[accs.length - 1]} (${Math.round(f.samplesPerSecond)} samples/s)`);
      }
      results.push({ start: s.label, mode, accs, speeds });
      cells.push(`${pct(mean(accs))} ± ${pct(sd(accs))} (${accs.map(pct).join(', ')})`);
    }
    lines.push(`| ${s.label} | ${cells.join(' | ')} |`);
  }
  lines.push(`| parents' logit ensemble (ceiling) | ${pct(ens.accuracy)} | | |`);
  lines.push(
    '',
    `One epoch on train.npz (5,292 samples), batch 32, AdamW lr ${LR}, wd ${FINETUNE_DEFAULTS.weightDecay}, warm-up + cosine, last checkpoint; distillation from both parents with T ${FINETUNE_DEFAULTS.kdTemp}, α ${FINETUNE_DEFAULTS.kdAlpha}; test.npz = 662 samples (one sample = 0.15 points).`,
  );
  writeBenchResults(OUT, { autotune: at, ensemble: ens.accuracy, results, table: lines.join('\n') });
  console.log(lines.join('\n'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
