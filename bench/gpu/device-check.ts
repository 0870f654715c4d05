// Device check (issue 6): fuse the fixture pair, finetune for a fixed number of steps and time Sinkhorn at 3072²
// on each provider in the same run, check the providers agree, and print a table.
// Usage: node dist-bench/gpu/device-check.js [--providers cpu,webgpu] [--steps 100] [--out DIR]
// On a machine without a GPU run it with --providers cpu: every stage still runs end to end.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { engine } from '../../worker/api';
import type { ProviderChoice, RunRecord } from '../../worker/types';
import { decodeSafetensors } from '../../worker/fusion/safetensors';
import { sinkhornAsync } from '../../worker/ot/sinkhorn-ort';
import { groundMetric, uniform } from '../../worker/ot';
import { machine, markdownTable } from '../common';

interface ProviderRun {
  provider: string;
  used: string;
  fuseSeconds: number;
  fusedAccuracy: number;
  finetuneSeconds: number;
  finetuneSamplesPerSecond: number;
  finetunedAccuracy: number;
  sinkhornSeconds: number;
  sinkhornIterations: number;
  maps: Record<string, Float32Array>;
  sinkhornPlanHead: Float64Array;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const FM = '/usr/share/datasets/fashion-mnist';
const fullTest = fs.existsSync(`${FM}/t10k-images-idx3-ubyte.gz`)
  ? { path: `${FM}/t10k-images-idx3-ubyte.gz`, labels: `${FM}/t10k-labels-idx1-ubyte.gz`, mean: [0.286], std: [0.353] }
  : 'examples/data/fmnist-test-2k.json';
const train = 'examples/data/fmnist-train-5k.json';

function accuracyOf(record: RunRecord, label: string): number {
  const m = record.metrics.find((x) => x.label === label || x.label.startsWith(label));
  if (m?.accuracy === undefined) throw new Error(`run.json has no '${label}' accuracy`);
  return m.accuracy;
}

async function runOn(provider: ProviderChoice, steps: number, work: string): Promise<ProviderRun> {
  const t0 = performance.now();
  const fused = await engine.fuse({
    models: ['test/fixtures/vit/vit48_s11.onnx', 'test/fixtures/vit/vit48_s10.onnx'],
    data: 'test/fixtures/vit/calib200.npz',
    evalData: fullTest,
    provider,
    runsDir: path.join(work, provider),
    recipe: { name: `device-${provider}` },
  });
  const fuseSeconds = (performance.now() - t0) / 1000;
  const record = fused.record;
  const mapsBytes = fs.readFileSync(path.join(fused.runDir, record.mapsFile ?? 'maps.safetensors'));
  const maps = Object.fromEntries(Object.entries(decodeSafetensors(mapsBytes).tensors).map(([k, t]) => [k, t.data]));
  const tuned = await engine.finetune({
    model: path.join(fused.runDir, path.basename(record.fusedModel)),
    data: train,
    evalData: fullTest,
    output: path.join(work, `${provider}-finetuned.onnx`),
    maxSteps: steps,
    batchSize: 64,
    lr: 1e-4,
    seed: 0,
    provider,
  });
  const finetunedAccuracy = tuned.evals[tuned.evals.length - 1]?.accuracy ?? NaN;
  // Sinkhorn at 3072² (the BERT-base MLP width) on the same provider.
  const n = 3072,
    d = 16;
  let seed = 42;
  const rand = () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  const X = Float32Array.from({ length: n * d }, rand);
  const Y = Float32Array.from({ length: n * d }, rand);
  const M = groundMetric(X, Y, n, n, d, { metric: 'euclidean', normalize: 'max' }).cost;
  await sinkhornAsync(uniform(256), uniform(256), M.subarray(0, 256 * 256), 0.08, {
    backend: 'ort',
    provider: provider === 'auto' ? 'cpu' : (provider as 'cpu'),
  });
  const s0 = performance.now();
  const sk = await sinkhornAsync(uniform(n), uniform(n), M, 0.08, { backend: 'ort', provider: provider === 'auto' ? 'cpu' : (provider as 'cpu') });
  const sinkhornSeconds = (performance.now() - s0) / 1000;
  return {
    provider,
    used: record.provider?.used ?? '?',
    fuseSeconds,
    fusedAccuracy: accuracyOf(record, 'ot'),
    finetuneSeconds: tuned.seconds,
    finetuneSamplesPerSecond: tuned.samplesPerSecond,
    finetunedAccuracy,
    sinkhornSeconds,
    sinkhornIterations: sk.iterations,
    maps,
    sinkhornPlanHead: sk.plan.slice(0, 4096),
  };
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function main(): Promise<void> {
  const providers = arg('providers', 'cpu,webgpu').split(',') as ProviderChoice[];
  const steps = Number(arg('steps', '100'));
  const out = arg('out', process.env.OUT ?? '');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-device-'));
  console.log(`machine: ${machine()}`);
  const runs: ProviderRun[] = [];
  for (const p of providers) {
    const report = await engine.providers(p).catch((e: Error) => {
      console.log(`${p}: unavailable — ${e.message}`);
      return undefined;
    });
    if (!report) continue;
    console.log(`${p}: ${report.reasons.join('; ')}`);
    try {
      runs.push(await runOn(p, steps, work));
    } catch (err) {
      // A provider that fails mid-way is a finding, not a reason to lose the other provider's numbers.
      console.log(`${p}: FAILED — ${(err as Error).message}`);
      process.exitCode = 1;
    }
  }
  const rows = runs.map((r) => [
    r.provider,
    r.used,
    r.fuseSeconds.toFixed(2),
    (r.fusedAccuracy * 100).toFixed(2),
    r.finetuneSeconds.toFixed(2),
    Math.round(r.finetuneSamplesPerSecond),
    (r.finetunedAccuracy * 100).toFixed(2),
    (r.sinkhornSeconds * 1000).toFixed(0),
    r.sinkhornIterations,
  ]);
  const table = markdownTable(
    ['provider', 'ran on', 'fuse s', 'OT acc %', `finetune ${steps} steps s`, 'train img/s', 'finetuned acc %', 'Sinkhorn 3072² ms', 'iters'],
    rows,
  );
  console.log(table);
  const agreement: string[] = [];
  let ok = true;
  for (const r of runs.slice(1)) {
    const base = runs[0];
    const dAcc = Math.abs(r.fusedAccuracy - base.fusedAccuracy) * 100;
    const dFt = Math.abs(r.finetunedAccuracy - base.finetunedAccuracy) * 100;
    const dMap = Math.max(...Object.keys(base.maps).map((k) => maxAbs(base.maps[k], r.maps[k] ?? new Float32Array(base.maps[k].length).fill(Infinity))));
    const dPlan = maxAbs(base.sinkhornPlanHead, r.sinkhornPlanHead);
    const pass = dAcc <= 0.2 && dFt <= 0.2 && dMap <= 1e-3;
    ok &&= pass;
    agreement.push(
      `${r.provider} vs ${base.provider}: OT accuracy Δ ${dAcc.toFixed(2)} pt, finetuned Δ ${dFt.toFixed(2)} pt, maps max |Δ| ${dMap.toExponential(2)}, Sinkhorn plan max |Δ| ${dPlan.toExponential(2)} → ${pass ? 'agree' : 'DISAGREE'}`,
    );
  }
  for (const line of agreement) console.log(line);
  if (out) {
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'device-check.md'), `machine: ${machine()}\n\n${table}\n\n${agreement.join('\n')}\n`);
  }
  if (!ok) process.exitCode = 1;
}

void main();
