// The auto-tuned default recipe: a small, time-budgeted sweep of fusion recipes (solver, regularisation, Q/K and
// head handling, residual policy, refit when the engine has it, weight- vs activation-based alignment), each one
// fused from the first part of the calibration data and scored on a held-out slice of it (never on the
// evaluation data). The winner is then used for the real fusion on all calibration samples; the sweep is recorded
// in run.json.
// The budget bounds the sweep in estimated seconds, not wall time (issue 31): before any trial, each candidate's
// cost is estimated from the model's size, the samples and the recipe (trialcost.ts estimateTrialCost), and a
// candidate runs only when its estimate fits in what the trials before it left of the budget — so the same inputs
// give the same sweep and the same chosen recipe on a quiet or a loaded machine. When not even two trials of the
// first candidate fit, no trial runs and the first candidate (the engine's default recipe) is used as is. A
// wall-time guard (default 20 × the budget, at least 10 min) is only a safety stop: when it fires, the running trial
// is stopped, the rest are skipped, and the record (run.json, the CLI) says so.
import path from 'node:path';
import { OtfuseError, throwIfCancelled } from '../errors';
import type { OnnxModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import { evaluateModel } from '../runtime/evaluate';
import type { ProviderChoice } from '../runtime/providers';
import type { AutotuneRecord, AutotuneTrial, FuseRecipe, ProgressEvent } from '../types';

export type { AutotuneRecord, AutotuneTrial };
import { resolveRecipe, type ResolvedRecipe } from '../fusion/recipe';
import { estimateTrialCost } from './trialcost';
import { analyzeModel } from '../graph/analyze';
import { refitLevels } from '../fusion/refit';

/** The fusion each candidate runs (run.ts passes its fuseLoaded): models, recipe and data in, the fused model out. */
export type AutotuneFuse = (input: {
  models: OnnxModel[];
  recipe: ResolvedRecipe;
  calib: Dataset;
  provider?: ProviderChoice;
  signal?: AbortSignal;
}) => Promise<{ fused: OnnxModel }>;

export interface AutotuneCandidate {
  label: string;
  recipe: FuseRecipe;
}

/**
 * The sweep, most promising first (the budget may cut the tail): the alignment refit (regmean, regmean++) on top of
 * soft and hard OT, then the paper's plain averaging. Ordered by what measured best on the bundled ViT pairs and
 * the BERT pair (bench/quality, bench/fusion).
 */
export const AUTOTUNE_CANDIDATES: AutotuneCandidate[] = [
  { label: 'Sinkhorn 0.08 + regmean refit', recipe: { solver: 'sinkhorn', reg: 0.08, refit: 'regmean' } },
  { label: 'exact (EMD, heads as units) + regmean refit', recipe: { preset: 'exact', refit: 'regmean' } },
  // Non-IID parents (bench/quality/noniid.md): the residual stream keeps the skip path's map (one map per stream,
  // as the parents computed it), a light ridge, and the anchor weighs 0.7 (the others share 0.3): best on the summed
  // validation accuracy of the non-IID pair and four parents, one-shot and after 1 epoch of KD
  // (bench/quality/noniid-anchor-*.json).
  {
    label: 'exact + regmean++ refit, skip-path stream maps, ridge 1e-3, anchor weight 0.7',
    recipe: { preset: 'exact', refit: 'regmean++', residualPolicy: 'only_resid', refitRidge: 1e-3, anchorWeight: 0.7 },
  },
  { label: 'EMD + regmean refit', recipe: { solver: 'emd', refit: 'regmean' } },
  { label: 'exact + regmean++ refit', recipe: { preset: 'exact', refit: 'regmean++' } },
  { label: 'Sinkhorn 0.08 + regmean refit, ridge 0.1', recipe: { solver: 'sinkhorn', reg: 0.08, refit: 'regmean', refitRidge: 0.1 } },
  { label: 'exact, no refit', recipe: { preset: 'exact', refit: 'none' } },
  { label: 'Sinkhorn 0.08, no refit (paper)', recipe: { solver: 'sinkhorn', reg: 0.08, refit: 'none' } },
  { label: 'weights (Sinkhorn 0.06), no refit', recipe: { preset: 'weights' } },
];

export interface AutotuneOptions {
  /** The fusion to score (passed in, so the sweep does not depend on the job that calls it). */
  fuse: AutotuneFuse;
  budgetSeconds?: number;
  /** When the calibration data has fewer than `samples` + 100 samples: the fraction of them held out for scoring
   * (default 0.25, at least 32); otherwise the samples after the first `samples` (up to 500) are the held-out slice. */
  heldOutFraction?: number;
  /** Fields every candidate keeps (e.g. samples, weights, name). */
  base?: FuseRecipe;
  candidates?: AutotuneCandidate[];
  /** The wall-time guard: a trial still running this long after the sweep started is stopped and the rest are
   * skipped (default: GUARD_FACTOR × the budget, at least GUARD_MIN_S); a safety stop, reported when it fires. */
  stopAfterSeconds?: number;
  /** A candidate's estimated seconds (default: estimateTrialCost from the model's size, samples and recipe). */
  estimateSeconds?: number | ((recipe: ResolvedRecipe) => number);
  provider?: ProviderChoice;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

export const AUTOTUNE_DEFAULT_BUDGET_S = 30;
/** The wall-time guard: GUARD_FACTOR × the budget, at least GUARD_MIN_S seconds. */
export const GUARD_FACTOR = 20;
export const GUARD_MIN_S = 600;

/** Tokens per sample of a model's input: a ViT's patches (+ CLS), a text model's sequence length. */
function tokensPerSample(models: OnnxModel[], calib: Dataset): number {
  const tokens = analyzeModel(models[0]).tokens;
  if (tokens) return tokens;
  const shape = calib.arrays[0]?.sampleShape ?? [];
  return calib.maxLength ?? (shape.length === 1 ? shape[0] : 64);
}

/** A view of samples [offset, offset + size) of a dataset. */
export function sliceDataset(base: Dataset, offset: number, size: number): Dataset {
  const n = Math.max(0, Math.min(size, base.size - offset));
  return {
    source: base.source,
    size: n,
    arrays: base.arrays,
    labels: base.labels.subarray(offset * (base.labelsPerSample ?? 1), (offset + n) * (base.labelsPerSample ?? 1)),
    ...(base.labelsPerSample ? { labelsPerSample: base.labelsPerSample } : {}),
    close: () => {}, // the view does not own the base dataset
    take: (indices) => ({ ...base.take(Array.from(indices, (i) => i + offset)), indices: Int32Array.from(indices) }),
  };
}

/**
 * The calibration data's split for scoring (the auto-tune's trials, the automatic anchor): with at least 100 samples
 * beyond the `samples` the fusion uses, the first `samples` fit and up to 500 after them are held out; otherwise
 * the tail (`fraction` of them, default 0.25, at least 32) is held out. Never the evaluation data.
 */
export function heldOutSplit(size: number, samples: number, fraction = 0.25): { fitSamples: number; heldOut: number } {
  const spare = size - samples;
  const wanted = Math.min(size, samples);
  const heldOut = spare >= 100 ? Math.min(500, spare) : Math.max(32, Math.round(wanted * fraction));
  return { fitSamples: spare >= 100 ? samples : wanted - heldOut, heldOut };
}

export async function autotuneRecipe(models: OnnxModel[], calib: Dataset, options: AutotuneOptions): Promise<AutotuneRecord> {
  const t0 = performance.now();
  const budget = options.budgetSeconds ?? AUTOTUNE_DEFAULT_BUDGET_S;
  const base = options.base ?? {};
  const samples = resolveRecipe(base).samples;
  // Calibration data beyond the samples the fusion uses: score on (up to 500 of) those; otherwise hold out the tail.
  const { fitSamples, heldOut } = heldOutSplit(calib.size, samples, options.heldOutFraction);
  if (fitSamples < 16)
    throw new OtfuseError(
      'BAD_DATA',
      `auto-tuning needs at least ${heldOut + 16} calibration samples (the data has ${calib.size}); give a recipe (e.g. --preset exact) or more data`,
      { file: calib.source },
    );
  const fit = sliceDataset(calib, 0, fitSamples);
  const score = sliceDataset(calib, fitSamples, heldOut);
  const candidates = options.candidates ?? AUTOTUNE_CANDIDATES;
  const trials: AutotuneTrial[] = [];
  let best: AutotuneTrial | undefined;
  // Before any trial: each candidate's estimated cost from the model's size, the samples and its recipe.
  const recipes = candidates.map((c) => resolveRecipe({ ...c.recipe, ...base, samples: fitSamples }));
  const shape = {
    samples: fitSamples,
    heldOut,
    tokensPerSample: tokensPerSample(models, calib),
    refitLevels: refitLevels(models.map((m) => analyzeModel(m))).length,
  };
  const estimates = recipes.map((r) =>
    typeof options.estimateSeconds === 'function' ? options.estimateSeconds(r) : (options.estimateSeconds ?? estimateTrialCost(models, r, shape)),
  );
  const tooLarge =
    candidates.length && estimates[0] * 2 > budget
      ? `not tried: a trial is estimated at ${estimates[0].toFixed(1)} s from the model's size, over half the ${budget} s budget`
      : undefined;
  // The wall-time guard (a safety stop; the user's cancel still cancels).
  const stop = new AbortController();
  const onCancel = () => stop.abort();
  options.signal?.addEventListener('abort', onCancel);
  if (options.signal?.aborted) stop.abort();
  const stopAfter = options.stopAfterSeconds ?? Math.max(GUARD_MIN_S, GUARD_FACTOR * budget);
  let guard: string | undefined;
  const timer = setTimeout(
    () => {
      guard = `the wall-time guard stopped the sweep after ${stopAfter} s (a safety stop: the trials took far longer than estimated on this machine)`;
      stop.abort();
    },
    Math.max(0, stopAfter * 1000 - (performance.now() - t0)),
  );
  timer.unref?.();
  let spent = 0; // estimated seconds of the trials run so far
  try {
    for (let i = 0; i < candidates.length; i++) {
      throwIfCancelled(options.signal);
      const c = candidates[i];
      const estimate = estimates[i];
      // A candidate runs when its estimate fits in what the trials before it left of the budget.
      const skip =
        tooLarge ??
        (guard ? 'not tried: the wall-time guard had fired' : undefined) ??
        (spent + estimate > budget
          ? `over the ${budget} s budget (estimated ${estimate.toFixed(1)} s, ${Math.max(0, budget - spent).toFixed(1)} s left)`
          : undefined);
      if (skip) {
        trials.push({ label: c.label, recipe: c.recipe, seconds: 0, estimate, skipped: skip });
        continue;
      }
      spent += estimate;
      options.onProgress?.({ stage: 'autotune', message: c.label, done: i, total: candidates.length });
      const t = performance.now();
      const cpu = process.cpuUsage();
      const used = () => {
        const u = process.cpuUsage(cpu);
        return { seconds: (performance.now() - t) / 1000, cpuSeconds: (u.user + u.system) / 1e6, estimate };
      };
      try {
        const fused = await options.fuse({ models, recipe: recipes[i], calib: fit, provider: options.provider, signal: stop.signal });
        const r = await evaluateModel(fused.fused, score, { provider: options.provider, signal: stop.signal, batchSize: 256 });
        const trial: AutotuneTrial = { label: c.label, recipe: c.recipe, accuracy: r.accuracy, loss: r.loss, ...used() };
        trials.push(trial);
        if (!best || trial.loss! < best.loss!) best = trial;
        options.onProgress?.({
          stage: 'autotune',
          message: `${c.label}: ${(r.accuracy * 100).toFixed(1)} % on ${score.size} held-out samples`,
          done: i + 1,
          total: candidates.length,
          metrics: { accuracy: r.accuracy, loss: r.loss },
        });
      } catch (err) {
        if (err instanceof OtfuseError && (err.code === 'UNSUPPORTED' || err.code === 'BAD_USAGE')) {
          trials.push({ label: c.label, recipe: c.recipe, ...used(), skipped: err.message.split('\n')[0] });
          continue;
        }
        // the guard fired inside this trial (not the user's cancel): record it and skip the rest
        if (err instanceof OtfuseError && err.code === 'CANCELLED' && !options.signal?.aborted) {
          trials.push({ label: c.label, recipe: c.recipe, ...used(), skipped: `stopped: ${guard ?? 'the wall-time guard fired'}` });
          continue;
        }
        throw err;
      }
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onCancel);
  }
  throwIfCancelled(options.signal);
  // No trial scored because the budget could not hold one: the first candidate (the engine's default), untuned.
  const untuned = !best && trials.every((t) => t.skipped) && trials.some((t) => /budget|guard/.test(t.skipped!)) && candidates.length > 0;
  const winner = best ?? (untuned ? candidates[0] : undefined);
  if (!winner)
    throw new OtfuseError(
      'UNSUPPORTED',
      `no auto-tune candidate could fuse ${models.map((m) => path.basename(m.file)).join(' + ')}: ${trials.map((t) => `${t.label}: ${t.skipped}`).join('; ')}`,
    );
  return {
    chosen: { ...winner.recipe, ...base },
    chosenLabel: winner.label,
    trials,
    fitSamples,
    heldOutSamples: score.size,
    score: 'held-out cross-entropy',
    budgetSeconds: budget,
    estimatedSeconds: spent,
    ...(guard ? { guard } : {}),
    seconds: (performance.now() - t0) / 1000,
  };
}
