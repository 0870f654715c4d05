// Decoder LM fusion quality on the fixtures (test/fixtures/decoders): held-out perplexity (heldout.txt, 64-token
// blocks, line + EOS) of each parent, their ensemble (mean of next-token probabilities: the ceiling), vanilla
// averaging and OT one-shot fusion (whole-head / GQA-group / SwiGLU-neuron / residual maps from calib.txt, a
// different part of the text than the held-out lines). Both orders (which parent is the anchor) are fused.
// Run: node $(node scripts/test-one.mjs bench/decoders/quality.bench.ts)
import path from 'node:path';
import { causalBlocks } from '../../worker/data/causal';
import { fuseDecoders } from '../../worker/fusion/decoder/fuse';
import { importHf } from '../../worker/hf';
import type { OnnxModel } from '../../worker/onnx/model';
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

async function main(): Promise<void> {
  console.log('| family | parent s0 | parent s1 | ensemble | vanilla avg | OT one-shot (anchor s0) | OT one-shot (anchor s1) | OT / vanilla |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const fam of ['gpt2', 'llama']) {
    const A = path.join(DEC, `${fam}-s0`);
    const B = path.join(DEC, `${fam}-s1`);
    const held = causalBlocks(path.join(DEC, 'heldout.txt'), A, T).ids;
    const calib = causalBlocks(path.join(DEC, 'calib.txt'), A, T).ids;
    const la = await logProbs(importHf(A), held);
    const lb = await logProbs(importHf(B), held);
    const vanilla = await fuseDecoders(A, B, { calibration: calib, blockLength: T, method: 'vanilla' });
    const ot0 = await fuseDecoders(A, B, { calibration: calib, blockLength: T });
    const ot1 = await fuseDecoders(B, A, { calibration: calib, blockLength: T });
    const pv = perplexity(await logProbs(vanilla.model, held), held);
    const p0 = perplexity(await logProbs(ot0.model, held), held);
    const p1 = perplexity(await logProbs(ot1.model, held), held);
    const f = (x: number) => x.toFixed(2);
    console.log(
      `| ${fam} | ${f(perplexity(la, held))} | ${f(perplexity(lb, held))} | ${f(perplexity(ensemble(la, lb), held))} | ${f(pv)} | ${f(p0)} | ${f(p1)} | ${(p0 / pv).toFixed(3)} |`,
    );
  }
}

void main();
