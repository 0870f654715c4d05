// The trunk of a partial model, chosen per K on held-out calibration rows (issue 28). Candidates at the cut after
// block K, each with every branch's unmerge map fitted on the fitting rows (worker/fusion/unmerge.ts):
//   fused   the fused model's embedding and first K blocks;
//   anchor  the anchor's own (its branch's fitted map is then ≈ the identity);
//   fitted  the better of those two on the held-out rows, with its residual-stream writers refit so that every
//           parent's stream at the cut is served (worker/fusion/trunkfit.ts).
// Score: mean KL(ensemble ‖ candidate) on the held-out rows — label-free, and smooth where the accuracy of a few
// dozen samples is not; the ensemble (K = 0) is what a partial model approximates. The held-out rows are those
// after the fusion's `samples` when the data has ≥ 100 spare (up to 500), otherwise the last quarter (≥ 32) of the
// samples; then the chosen kind is fitted again on all the samples. The fused model itself saw every sample
// (its refit), so its trunk's held-out score is slightly optimistic; the evaluation data is never read here.
import { throwIfCancelled } from '../errors';
import type { OnnxModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import type { ModelPlan } from '../graph/analyze';
import type { PartialTrunk, PartialTrunkCandidate, ProgressEvent } from '../types';
import { buildPartial } from '../fusion/partial';
import { captureTensors, type FittedUnmerge, type UnmergeFitInput } from '../fusion/unmerge';
import { fitMaps, fitPartialTrunk } from '../fusion/trunkfit';
import { sliceDataset } from './autotune';

export interface TrunkChoice {
  kind: PartialTrunk;
  trunk: OnnxModel;
  fitted: FittedUnmerge[];
  candidates: PartialTrunkCandidate[];
}

/** The unmerge fit's inputs (`samples`: the fusion's calibration samples) and the cuts to choose a trunk for. */
export interface ChoiceInput extends Pick<UnmergeFitInput, 'models' | 'plans' | 'fused' | 'cutMaps' | 'calib' | 'samples' | 'provider' | 'signal'> {
  /** The cuts to choose a trunk for (0 < K < layers). */
  ks: number[];
  onProgress?: (e: ProgressEvent) => void;
}

/** Held-out calibration rows: the samples past the fusion's when there are ≥ 100 of them, else the tail. */
export function heldOutSplit(size: number, samples: number): { fit: number; heldOut: number; offset: number; refitOnAll: boolean } | undefined {
  const spare = size - samples;
  if (spare >= 100) return { fit: samples, heldOut: Math.min(500, spare), offset: samples, refitOnAll: false };
  const used = Math.min(size, samples);
  const heldOut = Math.max(32, Math.round(0.25 * used));
  return used - heldOut >= 16 ? { fit: used - heldOut, heldOut, offset: used - heldOut, refitOnAll: true } : undefined;
}

const outputName = (m: OnnxModel) => m.graph.output?.[0]?.name ?? '';

/** Mean KL(p ‖ q) over rows of logits (width v), and the accuracy of q's argmax against one label per row. */
export function klAndAccuracy(p: Float32Array, q: Float32Array, v: number, labels?: Int32Array): { kl: number; accuracy?: number } {
  const rows = p.length / v;
  let kl = 0,
    hits = 0;
  const logSoftmax = (x: Float32Array, o: number) => {
    let mx = -Infinity;
    for (let j = 0; j < v; j++) mx = Math.max(mx, x[o + j]);
    let s = 0;
    for (let j = 0; j < v; j++) s += Math.exp(x[o + j] - mx);
    const lse = mx + Math.log(s);
    return Array.from({ length: v }, (_, j) => x[o + j] - lse);
  };
  for (let r = 0; r < rows; r++) {
    const lp = logSoftmax(p, r * v),
      lq = logSoftmax(q, r * v);
    let arg = 0;
    for (let j = 0; j < v; j++) {
      kl += Math.exp(lp[j]) * (lp[j] - lq[j]);
      if (lq[j] > lq[arg]) arg = j;
    }
    if (labels && arg === labels[r]) hits++;
  }
  return { kl: kl / rows, ...(labels ? { accuracy: hits / rows } : {}) };
}

/** The chosen trunk for every K in `ks`, or undefined when the calibration data is too small to hold rows out. */
export async function chooseTrunks(
  input: ChoiceInput,
): Promise<{ choices: Map<number, TrunkChoice>; split: { fit: number; heldOut: number; refitOnAll: boolean } } | undefined> {
  const { models, plans, fused, cutMaps, calib, ks } = input;
  const split = heldOutSplit(calib.size, input.samples);
  if (!split || !ks.length) return undefined;
  const fitRows = sliceDataset(calib, 0, split.fit);
  const held = sliceDataset(calib, split.offset, split.heldOut);
  const on = (data: Dataset, samples: number) => ({ calib: data, samples, provider: input.provider, signal: input.signal });
  const base = { models, plans, cutMaps };
  const logitsOn = async (m: OnnxModel) => (await captureTensors(m, [outputName(m)], on(held, held.size)))[0];
  const ensemble = await logitsOn(buildPartial({ ...base, fused, k: 0 }));
  const width = ensemble.length / held.size;
  const labels = !calib.labelsPerSample && held.labels.length === held.size ? held.labels : undefined;
  const cuts = (p: ModelPlan) => ks.map((k) => p.blocks[k - 1].output);
  const streams = async (rows: Dataset, n: number) => {
    const own: Float32Array[][] = [];
    for (let i = 0; i < models.length; i++) own.push(await captureTensors(models[i], cuts(plans[i]), on(rows, n)));
    return { own, fused: await captureTensors(fused, cuts(plans[0]), on(rows, n)) };
  };
  const s = await streams(fitRows, split.fit);
  const all = split.refitOnAll ? await streams(calib, split.fit + split.heldOut) : s;
  const choices = new Map<number, TrunkChoice>();
  for (const [c, k] of ks.entries()) {
    throwIfCancelled(input.signal);
    input.onProgress?.({ stage: 'refit', message: `partial fusion: choosing the trunk for K = ${k}`, done: c, total: ks.length });
    const own = s.own.map((o) => o[c]);
    const tried: (TrunkChoice & { score: PartialTrunkCandidate })[] = [];
    const score = async (kind: PartialTrunk, trunk: OnnxModel, fitted: FittedUnmerge[], residual: number, from?: 'fused' | 'anchor') => {
      const r = klAndAccuracy(ensemble, await logitsOn(buildPartial({ ...base, fused: trunk, k, fitted })), width, labels);
      const cand: PartialTrunkCandidate = {
        trunk: kind,
        ...(from ? { from } : {}),
        heldOutKl: r.kl,
        ...(r.accuracy !== undefined ? { heldOutAccuracy: r.accuracy } : {}),
        residual,
      };
      tried.push({ kind, trunk, fitted, candidates: [], score: cand });
    };
    const fromFused = fitMaps(s.fused[c], own, { plans, cutMaps }, k);
    await score('fused', fused, fromFused.fitted, fromFused.residual);
    const fromAnchor = fitMaps(s.own[0][c], own, { plans, cutMaps }, k);
    await score('anchor', models[0], fromAnchor.fitted, fromAnchor.residual);
    const start = tried[0].score.heldOutKl <= tried[1].score.heldOutKl ? tried[0] : tried[1];
    const from = start.kind as 'fused' | 'anchor';
    const tf = await fitPartialTrunk({ ...base, ...on(fitRows, split.fit), fused: start.trunk, k, own });
    if (tf.kept.length) await score('fitted', tf.trunk, tf.fitted, tf.residuals[tf.residuals.length - 1], from);
    const best = tried.reduce((a, b) => (b.score.heldOutKl < a.score.heldOutKl ? b : a));
    const candidates = tried.map((t) => t.score);
    if (!split.refitOnAll) {
      choices.set(k, { kind: best.kind, trunk: best.trunk, fitted: best.fitted, candidates });
      continue;
    }
    // The chosen kind again, fitted on every sample.
    const ownAll = all.own.map((o) => o[c]);
    if (best.kind === 'fitted') {
      const again = await fitPartialTrunk({ ...base, ...on(calib, split.fit + split.heldOut), fused: from === 'fused' ? fused : models[0], k, own: ownAll });
      choices.set(k, { kind: 'fitted', trunk: again.trunk, fitted: again.fitted, candidates });
    } else {
      const h = best.kind === 'fused' ? all.fused[c] : all.own[0][c];
      choices.set(k, { kind: best.kind, trunk: best.trunk, fitted: fitMaps(h, ownAll, { plans, cutMaps }, k).fitted, candidates });
    }
  }
  return { choices, split: { fit: split.fit, heldOut: split.heldOut, refitOnAll: split.refitOnAll } };
}
