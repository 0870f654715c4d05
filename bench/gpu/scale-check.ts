// GPU scale check (issue 31 item 6): the ViT-B/16 and GPT-2-small (124M) fusions and a short finetune of each fused
// model, on every provider asked for, in one run; one JSON with the times (fuse, its stages, finetune), peak RSS, and
// the CPU/GPU agreement (largest |Δ| of the maps and of the fused weights against the first provider, finetune
// losses). Sized for one 10-minute device call (--samples 200 --steps 50 on a GPU; the defaults below fit a CPU
// check). A case whose fixtures are missing, or a provider that fails, is a row with its error, not a lost run.
// Fixtures: .cache/scale/ (scripts/fixtures/make_scale.py --only vitB) and .cache/decoders-scale/ (bench/decoders/
// make_scale.py, GPT-2-small pair + text). bench/gpu/scale-gpu.sh makes them and runs this.
// Usage: node dist-bench/gpu/scale-check.js [--providers cpu,cuda,webgpu] [--cases vitB,gpt2] [--samples 16]
//          [--steps 2] [--out DIR] [--gpt2 A_DIR,B_DIR,DATA]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { engine } from '../../worker/api';
import type { DatasetSpec, ProviderChoice } from '../../worker/types';
import { decodeSafetensors } from '../../worker/fusion/safetensors';
import { loadModel } from '../../worker/onnx/model';
import { machine } from '../common';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

interface Case {
  name: string;
  models: string[];
  data: string;
  /** The fused model file inside the run folder is record.fusedModel; HF decoder runs write a folder too. */
}

const DEC = '.cache/decoders-scale';
/** Blocks of 128 tokens, as bench/decoders/scale.bench.ts and finetune_scale.py (GPT-2's own 1024 does not fit a
 * 24 GiB machine's finetune at batch 4). */
const TEXT_MAX_LENGTH = 128;
function cases(): Case[] {
  const [ga, gb, gd] = arg('gpt2', `${DEC}/gpt2-124m-s0,${DEC}/gpt2-124m-s1,${DEC}/calib.txt`).split(',');
  return [
    { name: 'vitB', models: ['.cache/scale/vitB_s1.onnx', '.cache/scale/vitB_s2.onnx'], data: '.cache/scale/calib_vit224_200.npz' },
    { name: 'gpt2', models: [ga, gb], data: gd },
  ];
}

interface Row {
  case: string;
  provider: string;
  used?: string;
  fuseSeconds?: number;
  timings?: Record<string, number>;
  peakRssMiB?: number;
  finetuneSeconds?: number;
  finetuneSamplesPerSecond?: number;
  finetuneLosses?: number[];
  error?: string;
  /** vs the first provider's row of the same case */
  agreement?: { mapsMaxAbs: number; weightsMaxAbs: number; finetuneLossMaxAbs: number };
}

const held = new Map<string, { maps: Record<string, Float32Array>; weights: Map<string, Float32Array>; losses: number[] }>();

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number> | undefined): number {
  if (!b || a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function runCase(c: Case, provider: ProviderChoice, samples: number, steps: number, work: string): Promise<Row> {
  const row: Row = { case: c.name, provider };
  const missing = [...c.models, c.data].filter((f) => !fs.existsSync(f));
  if (missing.length) return { ...row, error: `missing fixtures: ${missing.join(', ')}` };
  try {
    const t0 = performance.now();
    const text = /\.(txt|jsonl)$/.test(c.data);
    const fused = await engine.fuse({
      models: c.models,
      data: text ? ({ path: c.data, maxLength: TEXT_MAX_LENGTH } as DatasetSpec) : c.data,
      skipEval: true,
      provider,
      runsDir: path.join(work, `${c.name}-${provider}`),
      // the default path's recipe when the auto-tune cannot afford a trial at this size (its first candidate)
      recipe: { name: `${c.name}-${provider}`, solver: 'sinkhorn', reg: 0.08, refit: 'regmean', samples },
    });
    row.fuseSeconds = (performance.now() - t0) / 1000;
    const r = fused.record;
    row.used = r.provider?.used;
    row.timings = r.timings;
    row.peakRssMiB = r.peakRssBytes ? Math.round(r.peakRssBytes / 2 ** 20) : undefined;
    const mapsFile = path.join(fused.runDir, r.mapsFile ?? 'maps.safetensors');
    const maps = fs.existsSync(mapsFile)
      ? Object.fromEntries(Object.entries(decodeSafetensors(fs.readFileSync(mapsFile)).tensors).map(([k, t]) => [k, t.data as Float32Array]))
      : {};
    const fusedPath = path.join(fused.runDir, path.basename(r.fusedModel));
    const weights = new Map<string, Float32Array>();
    if (fusedPath.endsWith('.onnx')) {
      const m = loadModel(fusedPath);
      for (const n of m.initializerNames()) weights.set(n, Float32Array.from(m.getInitializer(n).data));
    }
    // A decoder's fused model is an .onnx file: its text data takes the parents' tokenizer explicitly.
    const tuned = await engine.finetune({
      model: fusedPath,
      data: text ? ({ path: c.data, tokenizer: path.resolve(c.models[0]), maxLength: TEXT_MAX_LENGTH } as DatasetSpec) : c.data,
      output: path.join(work, `${c.name}-${provider}-ft${fusedPath.endsWith('.onnx') ? '.onnx' : ''}`),
      maxSteps: steps,
      batchSize: 4,
      lr: 1e-5,
      seed: 0,
      provider,
    });
    row.finetuneSeconds = tuned.seconds;
    row.finetuneSamplesPerSecond = tuned.samplesPerSecond;
    row.finetuneLosses = tuned.history.map((h) => h.loss);
    const base = held.get(c.name);
    if (!base) held.set(c.name, { maps, weights, losses: row.finetuneLosses });
    else
      row.agreement = {
        mapsMaxAbs: Math.max(0, ...Object.keys(base.maps).map((k) => maxAbs(base.maps[k], maps[k]))),
        weightsMaxAbs: Math.max(0, ...[...base.weights.keys()].map((k) => maxAbs(base.weights.get(k)!, weights.get(k)))),
        finetuneLossMaxAbs: maxAbs(base.losses, row.finetuneLosses),
      };
  } catch (err) {
    row.error = (err as Error).message.split('\n')[0];
  }
  return row;
}

async function main(): Promise<void> {
  const providers = arg('providers', 'cpu').split(',') as ProviderChoice[];
  const only = arg('cases', 'vitB,gpt2').split(',');
  const samples = Number(arg('samples', '16'));
  const steps = Number(arg('steps', '2'));
  const out = arg('out', process.env.OUT ?? '.cache/gpu-out');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-scale-check-'));
  const rows: Row[] = [];
  try {
    for (const c of cases().filter((x) => only.includes(x.name)))
      for (const p of providers) {
        const row = await runCase(c, p, samples, steps, work);
        console.log(JSON.stringify(row));
        rows.push(row);
      }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  fs.mkdirSync(out, { recursive: true });
  const report = { machine: machine(), date: new Date().toISOString(), load: os.loadavg(), samples, steps, providers, rows };
  fs.writeFileSync(path.join(out, 'scale-check.json'), JSON.stringify(report, null, 1));
  if (rows.some((r) => r.error && !r.error.startsWith('missing fixtures'))) process.exitCode = 1;
}

void main();
