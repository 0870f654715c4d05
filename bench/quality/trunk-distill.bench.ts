// Partial fusion + trunk distillation on the non-IID pair (issue 28; train/trunkdistill.ts). For each K: the partial
// model as `otfuse fuse A B --data calib200.npz --merge-layers K` builds it (auto-tuned recipe, trunk chosen on
// held-out calibration samples, fitted unmerge maps); then, per seed, the trunk distillation alone (the default
// --trunk-epochs on the shared 2k, no labels) and the product's finetune of a partial model (that distillation, then
// 1 epoch KD from the parents: `otfuse finetune P --data shared2k --teacher A --teacher B`). Baselines on the same
// images: the better parent as it is, + 1 epoch KD (the same finetune), + 41 epochs KD (as many passes over the
// shared set as the distillation and the finetune together), and the parents' logit ensemble. 10k test, val for
// choices. Writes bench/quality/trunk-distill<-tag>.json.
// Usage: npm run build && node $(node scripts/test-one.mjs bench/quality/trunk-distill.bench.ts) [--dir .cache/noniid]
//          [--ks 1,2,3] [--seeds 3] [--long-seeds 1] [--tag NAME]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel, type OnnxModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { distillTrunk } from '../../worker/train/trunkdistill';
import { finetuneModel } from '../../worker/train/finetune';
import { FINETUNE_DEFAULTS } from '../../worker/train/options';
import { logitsOn, halves, partialModelFile } from './noniid-common';
import { writeBenchResults } from '../common';

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
};
const DIR = arg('dir', '.cache/noniid');
const KS = arg('ks', '1,2,3').split(',').map(Number);
const SEEDS = Number(arg('seeds', '3'));
/** Seeds of the 41-epoch baseline (2.5 min each here). */
const LONG_SEEDS = Number(arg('long-seeds', '1'));
const TAG = arg('tag', path.basename(DIR));
const A = path.join(DIR, 'pair_a.onnx'),
  B = path.join(DIR, 'pair_b.onnx');
const SHARED = path.join(DIR, 'shared2k.npz');
const val = openDataset(path.join(DIR, 'val.npz')),
  test = openDataset(path.join(DIR, 'test.npz'));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-trunk-'));

interface Score {
  val: number;
  test: number;
  lo: number;
  hi: number;
}
async function score(m: OnnxModel): Promise<Score> {
  const v = halves(await logitsOn(m, val), val.labels!);
  const t = halves(await logitsOn(m, test), test.labels!);
  return { val: v.all, test: t.all, lo: t.lo, hi: t.hi };
}
const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
const sd = (x: number[]) => Math.sqrt(mean(x.map((v) => (v - mean(x)) ** 2)));
function summary(label: string, runs: Score[], parameters?: number): Record<string, unknown> {
  return {
    model: label,
    val: mean(runs.map((r) => r.val)),
    test: mean(runs.map((r) => r.test)),
    test_sd: runs.length > 1 ? sd(runs.map((r) => r.test)) : undefined,
    test_0to4: mean(runs.map((r) => r.lo)),
    test_5to9: mean(runs.map((r) => r.hi)),
    seeds: runs.map((r) => Number((100 * r.test).toFixed(2))),
    parameters,
  };
}

async function kd(start: string, seed: number, epochs: number, tag: string): Promise<OnnxModel> {
  const out = path.join(work, `${tag}-s${seed}.onnx`);
  await finetuneModel({ model: start, data: SHARED, output: out, epochs, seed, keep: 'last', threads: 1, teachers: [A, B], trunkEpochs: 0 }, {});
  return loadModel(out);
}

/** The partial model at K as the product builds it. */
function partialFile(k: number, file: string): void {
  partialModelFile(A, B, path.join(DIR, 'calib200.npz'), k, file, work);
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const rows: Record<string, unknown>[] = [];
  const a = loadModel(A);
  const single = a.summary().parameterCount;
  const parent = await score(a);
  rows.push(summary('better parent A', [parent], single));
  rows.push(summary('parent B', [await score(loadModel(B))], single));
  const ensFile = path.join(work, 'ensemble.onnx');
  partialFile(0, ensFile);
  const ens = await score(loadModel(ensFile));
  rows.push(summary('logit ensemble (K = 0)', [ens], 2 * single));
  for (const epochs of [1, 41]) {
    const runs: Score[] = [];
    for (let s = 0; s < (epochs > 1 ? LONG_SEEDS : SEEDS); s++) runs.push(await score(await kd(A, s, epochs, `parent-kd${epochs}`)));
    if (runs.length) rows.push(summary(`better parent + ${epochs} epoch${epochs > 1 ? 's' : ''} KD (shared 2k)`, runs, single)); // --long-seeds 0: no row
  }
  for (const k of KS) {
    const file = path.join(work, `partial-k${k}.onnx`);
    partialFile(k, file);
    const p = loadModel(file);
    const size = p.summary().parameterCount;
    rows.push(summary(`partial K = ${k} (${(size / single).toFixed(2)}×), one-shot`, [await score(p)], size));
    const fd: Score[] = [],
      both: Score[] = [];
    for (let s = 0; s < SEEDS; s++) {
      const d = await distillTrunk({ partial: p, teachers: [A, B], data: openDataset(SHARED), epochs: FINETUNE_DEFAULTS.trunkEpochs, seed: s });
      fd.push(await score(d.model));
      const dFile = path.join(work, `partial-k${k}-fd-s${s}.onnx`);
      d.model.save(dFile);
      both.push(await score(await kd(dFile, s, 1, `partial-k${k}-fd-kd`)));
    }
    rows.push(summary(`partial K = ${k} + trunk distillation (${FINETUNE_DEFAULTS.trunkEpochs} epochs)`, fd, size));
    rows.push(summary(`partial K = ${k} + trunk distillation + 1 epoch KD (the finetune of a partial model)`, both, size));
    console.log(JSON.stringify(rows.slice(-3)));
  }
  const target = (p: number, e: number) => p + 0.75 * (e - p);
  const out = path.join('bench', 'quality', `trunk-distill-${TAG}.json`);
  writeBenchResults(out, {
    caption: `Partial fusion + trunk distillation, non-IID pair (${DIR}); ${SEEDS} seeds; target (issue 28) = parent + 0.75 × (ensemble − parent): val ${(100 * target(parent.val, ens.val)).toFixed(2)} %, test ${(100 * target(parent.test, ens.test)).toFixed(2)} %`,
    columns: [
      { key: 'model', label: 'model' },
      { key: 'parameters', label: 'parameters', format: 'int' },
      { key: 'val', label: 'val %', format: 'pct' },
      { key: 'test', label: '10k test %', format: 'pct' },
      { key: 'test_sd', label: '± sd', format: 'pct' },
      { key: 'test_0to4', label: 'classes 0–4', format: 'pct' },
      { key: 'test_5to9', label: 'classes 5–9', format: 'pct' },
    ],
    rows,
    target: { val: target(parent.val, ens.val), test: target(parent.test, ens.test) },
    seconds: Math.round((performance.now() - t0) / 1000),
  });
  console.log(`wrote ${out}`);
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
