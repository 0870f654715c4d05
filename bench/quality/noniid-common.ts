// Shared by the non-IID benches (noniid, noniid-partial, noniid-oneshot, noniid-anchor): logits of a model on a data
// set, accuracy overall, on the class halves 0–4 / 5–9 and per class group, the "+ 1 epoch KD" runs, and a partial
// model as the CLI builds it.
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { loadModel, type OnnxModel } from '../../worker/onnx/model';
import type { Dataset } from '../../worker/data/dataset';
import { ModelRunner } from '../../worker/runtime/runner';
import { finetuneModel } from '../../worker/train/finetune';

/** `otfuse fuse A B --data CALIB --merge-layers K -o FILE` (run folder under `runsDir`): the partial model as the product builds it. */
export function partialModelFile(a: string, b: string, calib: string, k: number, file: string, runsDir: string): void {
  execFileSync('node', ['dist/cli.js', 'fuse', a, b, '--data', calib, '--merge-layers', String(k), '-o', file, '--no-eval', '--runs-dir', runsDir]);
}

/** Logits [samples, 10] in one pass (batches of 500). */
export async function logitsOn(model: OnnxModel, d: Dataset): Promise<Float32Array> {
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

/** Accuracy overall and on classes 0–4 (lo) and 5–9 (hi). */
export function halves(l: Float32Array, labels: Int32Array): { all: number; lo: number; hi: number } {
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

/** Class groups per scenario: the pair's halves (A's home classes 0–4, B's 5–9), the four parents' home classes. */
export const SCENARIO_GROUPS: Record<string, number[][]> = {
  pair: [
    [0, 1, 2, 3, 4],
    [5, 6, 7, 8, 9],
  ],
  quad: [
    [0, 1, 2],
    [3, 4, 5],
    [6, 7],
    [8, 9],
  ],
};

/** Accuracy overall and on each class group. */
export function groupAccuracy(l: Float32Array, labels: Int32Array, groups: number[][]): { all: number; groups: number[] } {
  const hit = groups.map(() => 0),
    n = groups.map(() => 0);
  let total = 0;
  for (let i = 0; i < labels.length; i++) {
    let arg = 0;
    for (let c = 1; c < 10; c++) if (l[i * 10 + c] > l[i * 10 + arg]) arg = c;
    const g = groups.findIndex((x) => x.includes(labels[i]));
    n[g]++;
    if (arg === labels[i]) {
      hit[g]++;
      total++;
    }
  }
  return { all: total / labels.length, groups: hit.map((h, g) => h / Math.max(1, n[g])) };
}

/** The non-IID benches' "+ 1 epoch KD": `start` distilled from `teachers` on the shared set for one epoch (otfuse's
 * finetune defaults, last checkpoint, one thread), once per seed 0 … seeds − 1; each result scored by `score`. */
export async function distilledSeeds<S>(
  start: string,
  teachers: string[],
  shared: string,
  work: string,
  tag: string,
  seeds: number,
  score: (m: OnnxModel) => Promise<S>,
): Promise<S[]> {
  const runs: S[] = [];
  for (let seed = 0; seed < seeds; seed++) {
    const out = path.join(work, `kd-${tag}-s${seed}.onnx`);
    // The tables' "+ 1 epoch KD" is that epoch alone: a partial start's trunk distillation (the product's first stage
    // for partial models, measured in trunk-distill.bench.ts) is off here, as it was when these tables were measured.
    await finetuneModel({ model: start, data: shared, output: out, epochs: 1, seed, keep: 'last', threads: 1, teachers, trunkEpochs: 0 }, {});
    runs.push(await score(loadModel(out)));
  }
  return runs;
}
