// Finetune benchmarks and the paper-claim experiment on the fixture ViTs and full Fashion-MNIST (Debian
// package files). Reproduces the numbers in bench/train/RESULTS.md:
//   npx esbuild bench/train/finetune.bench.ts --bundle --platform=node --external:onnxruntime-node \
//     --outfile=dist-bench/train/finetune.bench.js && node dist-bench/train/finetune.bench.js [sections...]
// Sections: throughput, parent, scratch, paper, sweep, export (default: throughput parent scratch paper).
// Writes bench/train/results.json (merged with what is already there) and prints one JSON line per run.
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset, DatasetSpec } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { finetuneModel } from '../../worker/train/finetune';
import { buildGradientGraph, buildTrainingGraph, flattenParams } from '../../worker/train/graphs';
import type { FinetuneRequest, ProgressEvent } from '../../worker/types';

const FM = '/usr/share/datasets/fashion-mnist';
const norm = { mean: [0.286], std: [0.353] };
const TRAIN: DatasetSpec = { path: `${FM}/train-images-idx3-ubyte.gz`, labels: `${FM}/train-labels-idx1-ubyte.gz`, ...norm };
const TEST: DatasetSpec = { path: `${FM}/t10k-images-idx3-ubyte.gz`, labels: `${FM}/t10k-labels-idx1-ubyte.gz`, ...norm };
const VIT = (name: string) => path.join(process.cwd(), 'test/fixtures/vit', `${name}.onnx`);
const OUT_DIR = path.join(process.cwd(), '.cache/bench-train');
const RESULTS = path.join(process.cwd(), 'bench/train/results.json');

/** The short-finetune recipe of the paper-claim experiment (chosen on a 55k/5k train/validation split, see sweep). */
export const RECIPE = { epochs: 1, batchSize: 32, lr: 5e-4, weightDecay: 0.01, clipNorm: 1, labelSmoothing: 0, seed: 0 };
export const RECIPE_B128 = { epochs: 1, batchSize: 128, lr: 1e-3, weightDecay: 0.01, clipNorm: 1, labelSmoothing: 0, seed: 0 };

interface Timed {
  /** Samples per second of the whole loop between the 10th step and the last (batch building included). */
  loopSamplesPerSecond?: number;
}

async function run(request: FinetuneRequest): Promise<Awaited<ReturnType<typeof finetuneModel>> & Timed> {
  let first: { t: number; done: number } | undefined;
  let last: { t: number; done: number } | undefined;
  const onProgress = (e: ProgressEvent) => {
    if (e.metrics?.loss === undefined || e.done === undefined) return;
    const now = { t: performance.now(), done: e.done };
    if (!first && e.done >= 10) first = now;
    last = now;
  };
  const r = await finetuneModel(request, { onProgress });
  const batch = request.batchSize ?? 128;
  const loop = first && last && last.done > first.done ? ((last.done - first.done) * batch) / ((last.t - first.t) / 1000) : undefined;
  return { ...r, loopSamplesPerSecond: loop };
}

async function accuracyOf(file: string, spec: DatasetSpec) {
  const r = await evaluateModel(loadModel(file), openDataset(spec), { batchSize: 500 });
  return { accuracy: r.accuracy, loss: r.loss };
}

const sections: Record<string, () => Promise<unknown>> = {
  async throughput() {
    const rows = [];
    for (const threads of [1, 2, 0]) {
      const r = await run({ model: VIT('vit48_s10'), data: TRAIN, output: path.join(OUT_DIR, 'tp.onnx'), maxSteps: 200, batchSize: 128, lr: 1e-4, threads });
      rows.push({
        threads: threads || 'default (min(4, cores))',
        batchSize: 128,
        steps: r.steps,
        stepGraphSamplesPerSecond: Math.round(r.samplesPerSecond),
        loopSamplesPerSecond: Math.round(r.loopSamplesPerSecond ?? 0),
        peakRssMiB: r.peakRssMiB,
      });
      log({ section: 'throughput', ...rows[rows.length - 1] });
    }
    return {
      rows,
      processMaxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
      pytorchReference: '1,500–2,800 img/s (1 thread, test/fixtures/vit/README.md)',
    };
  },
  async parent() {
    const model = VIT('vit48_s10');
    const out = path.join(OUT_DIR, 'parent_s10.onnx');
    const trainBefore = await accuracyOf(model, TRAIN);
    const testBefore = await accuracyOf(model, TEST);
    const r = await run({ model, data: TRAIN, evalData: TEST, output: out, epochs: 1, batchSize: 128, lr: 3e-4, keep: 'last' });
    const trainAfter = await accuracyOf(out, TRAIN);
    const row = {
      model: 'vit48_s10',
      settings: 'epochs 1, batch 128, lr 3e-4, wd 0.01, clip 1',
      trainLossBefore: trainBefore.loss,
      trainLossAfter: trainAfter.loss,
      testBefore: testBefore.accuracy,
      testAfter: r.evals[0].accuracy,
      seconds: r.seconds,
    };
    log({ section: 'parent', ...row });
    return row;
  },
  async scratch() {
    const rows = [];
    for (const lr of [1e-3, 2e-3]) {
      const r = await run({
        model: VIT('vit48_s10'),
        data: TRAIN,
        evalData: TEST,
        output: path.join(OUT_DIR, 'scratch.onnx'),
        epochs: 1,
        batchSize: 128,
        lr,
        reinitialize: true,
        seed: 0,
        keep: 'last',
      });
      rows.push({
        settings: `re-initialised vit48_s10 graph, epochs 1 (60k), batch 128, lr ${lr}, warmup 23, wd 0.01, clip 1, seed 0`,
        testAccuracy: r.evals[0].accuracy,
        seconds: r.seconds,
        samplesPerSecond: Math.round(r.samplesPerSecond),
      });
      log({ section: 'scratch', ...rows[rows.length - 1] });
    }
    return rows;
  },
  paper: () =>
    paperClaim(RECIPE, [
      ['vit48_otfused_ref', [0, 1, 2]],
      ['vit48_vanilla', [0, 1, 2]],
      ['vit48_s11', [0, 1, 2]],
      ['vit48_s10', [0]],
      ['vit48_otfused_emd_ref', [0]],
    ]),
  /** Fewer, larger steps (469 at batch 128): the starting point matters more. */
  'paper-b128': () =>
    paperClaim(RECIPE_B128, [
      ['vit48_otfused_ref', [0, 1, 2]],
      ['vit48_vanilla', [0, 1, 2]],
      ['vit48_s11', [0, 1, 2]],
    ]),
  /** A very short finetune: 100 steps of 128 (0.21 epoch). */
  'paper-100': () =>
    paperClaim({ ...RECIPE_B128, maxSteps: 100 }, [
      ['vit48_otfused_ref', [0, 1, 2]],
      ['vit48_vanilla', [0, 1, 2]],
      ['vit48_s11', [0, 1, 2]],
    ]),
  /** Writes the graphs bench/train/torch_compare.py compares against PyTorch (to `.cache/bench-train/export`). */
  async export() {
    const dir = path.join(OUT_DIR, 'export');
    fs.mkdirSync(dir, { recursive: true });
    const model = loadModel(VIT('vit48_s10'));
    const gg = await buildGradientGraph(model);
    fs.writeFileSync(path.join(dir, 'grad.onnx'), gg.model.toBytes());
    const tg = await buildTrainingGraph(model);
    fs.writeFileSync(path.join(dir, 'step.onnx'), tg.model.toBytes());
    const flat = flattenParams(model, tg.layout);
    fs.writeFileSync(path.join(dir, 'params.f32'), new Uint8Array(flat.buffer));
    return { dir, gradNodes: gg.model.nodes.length, stepNodes: tg.model.nodes.length, params: tg.layout.total };
  },
  async sweep() {
    // Recipe selection without the test set: train on the first 55k, validate on the last 5k of train.
    const rows = [];
    const grid: Partial<FinetuneRequest>[] = [
      { batchSize: 128, lr: 1e-3 },
      { batchSize: 128, lr: 2e-3 },
      { batchSize: 64, lr: 1e-3 },
      { batchSize: 64, lr: 5e-4 },
      { batchSize: 32, lr: 1e-3 },
      { batchSize: 32, lr: 5e-4 },
      { batchSize: 32, lr: 5e-4, seed: 1 },
      { batchSize: 32, lr: 5e-4, seed: 2 },
      { batchSize: 32, lr: 2e-4 },
      { batchSize: 16, lr: 5e-4 },
      { batchSize: 16, lr: 3e-4 },
      { batchSize: 128, lr: 1e-3, labelSmoothing: 0.1 },
      { batchSize: 64, lr: 1e-3, labelSmoothing: 0.1 },
      { batchSize: 64, lr: 5e-4, labelSmoothing: 0.1 },
      { batchSize: 32, lr: 5e-4, labelSmoothing: 0.1 },
    ];
    for (const g of grid) {
      const out = path.join(OUT_DIR, 'sweep.onnx');
      const r = await run({
        model: VIT('vit48_otfused_ref'),
        data: { ...TRAIN, limit: 55000 },
        evalData: { ...TRAIN, offset: 55000 },
        output: out,
        epochs: 1,
        keep: 'last',
        ...g,
      });
      rows.push({ ...g, validation: r.evals[0].accuracy, test: (await accuracyOf(out, TEST)).accuracy });
      log({ section: 'sweep', ...rows[rows.length - 1] });
    }
    return rows;
  },
};

async function paperClaim(recipe: Partial<FinetuneRequest>, plan: [string, number[]][]) {
  const rows: {
    model: string;
    seed: number;
    before?: number;
    after: number;
    trainLoss: number;
    seconds: number;
    samplesPerSecond: number;
    peakRssMiB?: number;
  }[] = [];
  for (const [name, seeds] of plan) {
    for (const seed of seeds) {
      const out = path.join(OUT_DIR, `paper_${name}_${seed}.onnx`);
      const r = await run({ model: VIT(name), data: TRAIN, evalData: TEST, output: out, ...recipe, seed, evalBefore: seed === 0, keep: 'last' });
      rows.push({
        model: name,
        seed,
        before: r.initial?.accuracy,
        after: r.evals[0].accuracy,
        trainLoss: r.train![0].loss,
        seconds: Math.round(r.seconds),
        samplesPerSecond: Math.round(r.samplesPerSecond),
        peakRssMiB: r.peakRssMiB,
      });
      log({ section: 'paper', ...rows[rows.length - 1] });
    }
  }
  const summary = plan.map(([name]) => {
    const acc = rows.filter((r) => r.model === name).map((r) => r.after);
    return { model: name, mean: acc.reduce((a, b) => a + b, 0) / acc.length, min: Math.min(...acc), max: Math.max(...acc), runs: acc.length };
  });
  log({ section: 'paper', summary });
  return { recipe, rows, summary, parents: { vit48_s10: 0.8495, vit48_s11: 0.8521 } };
}

function log(row: object): void {
  console.log(JSON.stringify(row));
}

async function main(): Promise<void> {
  if (!fs.existsSync(TRAIN.path)) {
    console.error(`Fashion-MNIST not found at ${FM} (Debian package dataset-fashion-mnist)`);
    process.exit(2);
  }
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const wanted = process.argv.slice(2).length ? process.argv.slice(2) : ['throughput', 'parent', 'scratch', 'paper'];
  const results: Record<string, unknown> = fs.existsSync(RESULTS) ? JSON.parse(fs.readFileSync(RESULTS, 'utf8')) : {};
  for (const name of wanted) {
    if (!sections[name]) throw new Error(`unknown section '${name}' (${Object.keys(sections).join(', ')})`);
    results[name] = { date: new Date().toISOString(), result: await sections[name]() };
    fs.writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n');
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
