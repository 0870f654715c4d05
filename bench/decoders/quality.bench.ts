// Decoder LM fusion quality on the fixtures (test/fixtures/decoders): held-out perplexity (64-token blocks, line + EOS)
// of each parent, their ensemble (mean of next-token probabilities: the ceiling), vanilla averaging and OT one-shot
// fusion (whole-head / GQA-group / SwiGLU-neuron / residual maps from calib.txt, a different part of the text than
// the held-out lines), then the same short KD finetune (distillation from both parents: their mean next-token
// distribution, plus the next-token labels) applied to the fused model, to the better parent and to vanilla.
//
// Splits: heldout.txt's first half is the validation text (which parent is "better", the fusion anchor, each arm's
// finetune recipe), its second half the test text (every reported number). The finetune trains on the fixture
// generator's training split (make_decoders.py: the license texts minus every 10th line), which the parents were
// trained on too; never on heldout.txt.
// Run: node $(node scripts/test-one.mjs bench/decoders/quality.bench.ts) [--kd] [--out bench/decoders/quality.json]
//   env DEC_KD_STEPS (default 150), DEC_KD_SEEDS (3), DEC_KD_FAMILIES (gpt2,llama)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { engine } from '../../worker/api';
import { writeBenchResults, mean, sampleSd as std } from '../common';
import { causalBlocks } from '../../worker/data/causal';
import type { TextSpec } from '../../worker/data/text';
import { fuseDecoders } from '../../worker/fusion/decoder/fuse';
import { importHf } from '../../worker/hf';
import { loadModel, type OnnxModel } from '../../worker/onnx/model';
import { createOrtSession, ortTensor } from '../../worker/runtime/session';

const DEC = path.join(process.cwd(), 'test', 'fixtures', 'decoders');
const T = 64;

/** log-softmax of every position's logits [blocks·T, V]. */
async function logProbs(model: OnnxModel, ids: Int32Array): Promise<Float32Array> {
  const s = await createOrtSession(model.toBytes(), { threads: 1 });
  const n = ids.length / T;
  let out: Float32Array | undefined;
  for (let b = 0; b < n; b += 8) {
    const rows = Math.min(8, n - b);
    const feed = BigInt64Array.from(ids.subarray(b * T, (b + rows) * T), (v) => BigInt(v));
    const r = await s.run({ input_ids: ortTensor('int64', feed, [rows, T]) });
    const l = r.logits.data as Float32Array;
    const V = l.length / (rows * T);
    out ??= new Float32Array(ids.length * V);
    for (let p = 0; p < rows * T; p++) {
      const row = l.subarray(p * V, (p + 1) * V);
      let m = -Infinity;
      for (const x of row) m = Math.max(m, x);
      let z = 0;
      for (const x of row) z += Math.exp(x - m);
      const lz = m + Math.log(z);
      for (let c = 0; c < V; c++) out[(b * T + p) * V + c] = row[c] - lz;
    }
  }
  await s.release();
  return out!;
}

/** Perplexity of next-token prediction (positions 0…T−2 of each block predict the next id). */
function perplexity(lp: Float32Array, ids: Int32Array): number {
  const V = lp.length / ids.length;
  let nll = 0;
  let k = 0;
  for (let i = 0; i < ids.length; i++) {
    if (i % T === T - 1) continue;
    nll -= lp[i * V + ids[i + 1]];
    k++;
  }
  return Math.exp(nll / k);
}

function ensemble(a: Float32Array, b: Float32Array): Float32Array {
  return Float32Array.from(a, (x, i) => Math.log(0.5 * Math.exp(x) + 0.5 * Math.exp(b[i])));
}

const f2 = (x: number) => x.toFixed(2);
const pm = (xs: number[]) => `${f2(mean(xs))} ± ${f2(std(xs))}`;

/** The fixture generator's text split (make_decoders.py lines()): every non-empty stripped line of the license texts. */
function licenseLines(): string[] {
  const dir = '/usr/share/common-licenses';
  const out: string[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    if (!fs.statSync(file).isFile()) continue;
    for (const ln of fs.readFileSync(file, 'utf8').split('\n')) if (ln.trim()) out.push(ln.trim());
  }
  return out;
}

interface Texts {
  train: string;
  validation: string;
  test: string;
}

function writeTexts(dir: string): Texts {
  const held = fs
    .readFileSync(path.join(DEC, 'heldout.txt'), 'utf8')
    .split('\n')
    .filter((l) => l.trim());
  const half = Math.floor(held.length / 2);
  const t: Texts = { train: path.join(dir, 'train.txt'), validation: path.join(dir, 'validation.txt'), test: path.join(dir, 'test.txt') };
  fs.writeFileSync(
    t.train,
    licenseLines()
      .filter((_, i) => i % 10 !== 0)
      .join('\n') + '\n',
  );
  fs.writeFileSync(t.validation, held.slice(0, half).join('\n') + '\n');
  fs.writeFileSync(t.test, held.slice(half).join('\n') + '\n');
  return t;
}

interface Recipe {
  lr: number;
  kdAlpha: number;
  kdTemp: number;
}

const RECIPES: Recipe[] = [
  { lr: 1e-3, kdAlpha: 0.5, kdTemp: 1 },
  { lr: 3e-3, kdAlpha: 0.5, kdTemp: 1 },
  { lr: 1e-3, kdAlpha: 1, kdTemp: 1 },
  { lr: 3e-3, kdAlpha: 1, kdTemp: 1 },
];

interface Ppl {
  validation: number;
  test: number;
}

interface FamilyResult {
  family: string;
  betterParent: string;
  parents: Record<string, Ppl>;
  ensemble: { test: number };
  vanilla: Ppl;
  ot: Ppl;
  fuseSeconds: number;
  kd?: {
    steps: number;
    batchBlocks: number;
    teachers: string[];
    arms: Record<string, { recipe: Recipe; sweep: unknown[]; test: number[]; validation: number[]; seconds: number }>;
  };
}

async function family(fam: string, texts: Texts, work: string, kd: boolean): Promise<FamilyResult> {
  const A = path.join(DEC, `${fam}-s0`);
  const B = path.join(DEC, `${fam}-s1`);
  const val = causalBlocks(texts.validation, A, T).ids;
  const test = causalBlocks(texts.test, A, T).ids;
  const calib = causalBlocks(path.join(DEC, 'calib.txt'), A, T).ids;
  const ppl = async (m: OnnxModel) => ({ validation: perplexity(await logProbs(m, val), val), test: perplexity(await logProbs(m, test), test) });
  const pa = await ppl(importHf(A));
  const pb = await ppl(importHf(B));
  const [better, other] = pa.validation <= pb.validation ? [A, B] : [B, A];
  const ens = perplexity(ensemble(await logProbs(importHf(A), test), await logProbs(importHf(B), test)), test);
  const t0 = Date.now();
  const vanilla = await fuseDecoders(better, other, { calibration: calib, blockLength: T, method: 'vanilla' });
  const ot = await fuseDecoders(better, other, { calibration: calib, blockLength: T });
  const fuseSeconds = (Date.now() - t0) / 1000;
  const out: FamilyResult = {
    family: fam,
    betterParent: path.basename(better),
    parents: { [path.basename(A)]: pa, [path.basename(B)]: pb },
    ensemble: { test: ens },
    vanilla: await ppl(vanilla.model),
    ot: await ppl(ot.model),
    fuseSeconds,
  };
  if (!kd) return out;
  const starts: Record<string, string> = { fused: path.join(work, `${fam}-ot.onnx`), parent: better, vanilla: path.join(work, `${fam}-vanilla.onnx`) };
  fs.writeFileSync(starts.fused, ot.model.toBytes());
  fs.writeFileSync(starts.vanilla, vanilla.model.toBytes());
  const steps = Number(process.env.DEC_KD_STEPS ?? 150);
  const seeds = Number(process.env.DEC_KD_SEEDS ?? 3);
  const data = { path: texts.train, tokenizer: A, maxLength: T } as TextSpec;
  const run = async (start: string, r: Recipe, seed: number) => {
    const output = path.join(work, `${fam}-${path.basename(start)}-${r.lr}-${r.kdAlpha}-${seed}.onnx`);
    const res = await engine.finetune({ model: start, data, output, teachers: [A, B], ...r, seed, maxSteps: steps, batchSize: 16, threads: 1 });
    const p = await ppl(loadModel(output));
    fs.rmSync(output, { force: true });
    return { ...p, seconds: res.seconds };
  };
  const arms: NonNullable<FamilyResult['kd']>['arms'] = {};
  for (const [arm, start] of Object.entries(starts)) {
    // Recipe choice on the validation text (seed 0), then more seeds of the chosen recipe.
    const sweep = [];
    for (const r of RECIPES) sweep.push({ recipe: r, ...(await run(start, r, 0)) });
    const best = sweep.reduce((x, y) => (y.validation < x.validation ? y : x));
    const runs = [best];
    for (let s = 1; s < seeds; s++) runs.push({ recipe: best.recipe, ...(await run(start, best.recipe, s)) });
    arms[arm] = {
      recipe: best.recipe,
      sweep,
      test: runs.map((r) => r.test),
      validation: runs.map((r) => r.validation),
      seconds: mean(runs.map((r) => r.seconds)),
    };
    console.error(`${fam} ${arm}+KD: ${pm(runs.map((r) => r.test))} (recipe ${JSON.stringify(best.recipe)})`);
  }
  return { ...out, kd: { steps, batchBlocks: 16, teachers: [path.basename(A), path.basename(B)], arms } };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const kd = args.includes('--kd');
  const outAt = args.indexOf('--out');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-decq-'));
  try {
    const texts = writeTexts(work);
    const families = (process.env.DEC_KD_FAMILIES ?? 'gpt2,llama').split(',');
    const results: FamilyResult[] = [];
    for (const fam of families) results.push(await family(fam, texts, work, kd));
    const loadAvgEnd = os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ');
    if (outAt >= 0) writeBenchResults(args[outAt + 1], { loadAvgEnd, block: T, results });
    console.log('Test perplexity (second half of heldout.txt; lower is better)');
    console.log(
      '| family | parent s0 | parent s1 | ensemble | vanilla | OT one-shot | OT / vanilla |' + (kd ? ' fused+KD | better parent+KD | vanilla+KD |' : ''),
    );
    console.log('|---|---|---|---|---|---|---|' + (kd ? '---|---|---|' : ''));
    for (const r of results) {
      const p = r.parents;
      const cells = [
        r.family,
        f2(p[`${r.family}-s0`].test),
        f2(p[`${r.family}-s1`].test),
        f2(r.ensemble.test),
        f2(r.vanilla.test),
        f2(r.ot.test),
        (r.ot.test / r.vanilla.test).toFixed(3),
      ];
      if (r.kd) for (const arm of ['fused', 'parent', 'vanilla']) cells.push(pm(r.kd.arms[arm].test));
      console.log(`| ${cells.join(' | ')} |`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

void main();
