// The auto-tuned default recipe: a small, time-budgeted sweep of fusion recipes (solver, regularisation, Q/K and
// head handling, residual policy, refit when the engine has it, weight- vs activation-based alignment), each one
// fused from the first part of the calibration data and scored on a held-out slice of it (never on the
// evaluation data). The winner is then used for the real fusion on all calibration samples; the sweep is recorded
// in run.json.
// The budget bounds the sweep: before any trial, a trial's cost is estimated from the model's size (the refit's
// solves and the alignment's cost matrices, estimateTrialSeconds); when not even two trials fit, no trial runs and
// the first candidate (the engine's default recipe) is used as is. A trial still running well past the budget
// is stopped (its partial work is dropped).
import path from 'node:path';
import { OtfuseError, throwIfCancelled } from '../errors';
import type { OnnxModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import { evaluateModel } from '../runtime/evaluate';
import type { ProviderChoice } from '../runtime/providers';
import type { AutotuneRecord, AutotuneTrial, FuseRecipe, ProgressEvent } from '../types';

export type { AutotuneRecord, AutotuneTrial };
import { resolveRecipe, type ResolvedRecipe } from '../fusion/recipe';
import { estimateTrialSeconds } from './trialcost';

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
  { label: 'Sinkhorn 0.08 + regmean++ refit', recipe: { solver: 'sinkhorn', reg: 0.08, refit: 'regmean++' } },
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
  /** A trial still running this long after the sweep started is stopped (default 1.5 × the budget: a trial that
   * started within the budget may finish a little past it, none runs on for long). */
  stopAfterSeconds?: number;
  /** One trial's estimated seconds (default: estimateTrialSeconds from the model's size). */
  estimateSeconds?: number;
  provider?: ProviderChoice;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

export const AUTOTUNE_DEFAULT_BUDGET_S = 30;

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

export async function autotuneRecipe(models: OnnxModel[], calib: Dataset, options: AutotuneOptions): Promise<AutotuneRecord> {
  const t0 = performance.now();
  const budget = options.budgetSeconds ?? AUTOTUNE_DEFAULT_BUDGET_S;
  const base = options.base ?? {};
  const samples = resolveRecipe(base).samples;
  // Calibration data beyond the samples the fusion uses: score on (up to 500 of) those; otherwise hold out the tail.
  const spare = calib.size - samples;
  const wanted = Math.min(calib.size, samples);
  const heldOut = spare >= 100 ? Math.min(500, spare) : Math.max(32, Math.round(wanted * (options.heldOutFraction ?? 0.25)));
  const fitSamples = spare >= 100 ? samples : wanted - heldOut;
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
  // Before any trial: a trial's estimated cost from the model's size. Not even two trials in the budget → none.
  const estimate = options.estimateSeconds ?? estimateTrialSeconds(models, resolveRecipe({ ...base, samples: fitSamples }));
  const tooLarge =
    estimate * 2 > budget ? `not tried: a trial is estimated at ${estimate.toFixed(1)} s from the model's size, over half the ${budget} s budget` : undefined;
  // A trial still running at stopAfter is stopped (the user's cancel still cancels).
  const stop = new AbortController();
  const onCancel = () => stop.abort();
  options.signal?.addEventListener('abort', onCancel);
  if (options.signal?.aborted) stop.abort();
  const stopAfter = options.stopAfterSeconds ?? budget * 1.5;
  const timer = setTimeout(() => stop.abort(), Math.max(0, stopAfter * 1000 - (performance.now() - t0)));
  timer.unref?.();
  try {
    for (let i = 0; i < candidates.length; i++) {
      throwIfCancelled(options.signal);
      const c = candidates[i];
      const recipe: FuseRecipe = { ...c.recipe, ...base, samples: fitSamples };
      const elapsed = (performance.now() - t0) / 1000;
      // Every candidate after the first must fit in what is left of the budget (estimated by the slowest so far).
      const slowest = Math.max(0, ...trials.map((t) => t.seconds));
      if (tooLarge || (best && elapsed + slowest > budget) || stop.signal.aborted) {
        trials.push({ label: c.label, recipe: c.recipe, seconds: 0, skipped: tooLarge ?? `over the ${budget} s budget` });
        continue;
      }
      options.onProgress?.({ stage: 'autotune', message: c.label, done: i, total: candidates.length });
      const t = performance.now();
      try {
        const fused = await options.fuse({ models, recipe: resolveRecipe(recipe), calib: fit, provider: options.provider, signal: stop.signal });
        const r = await evaluateModel(fused.fused, score, { provider: options.provider, signal: stop.signal, batchSize: 256 });
        const trial: AutotuneTrial = { label: c.label, recipe: c.recipe, accuracy: r.accuracy, loss: r.loss, seconds: (performance.now() - t) / 1000 };
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
          trials.push({ label: c.label, recipe: c.recipe, seconds: (performance.now() - t) / 1000, skipped: err.message.split('\n')[0] });
          continue;
        }
        // the budget ran out inside this trial (not the user's cancel): record it and stop the sweep
        if (err instanceof OtfuseError && err.code === 'CANCELLED' && !options.signal?.aborted) {
          trials.push({ label: c.label, recipe: c.recipe, seconds: (performance.now() - t) / 1000, skipped: `stopped: past the ${budget} s budget` });
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
  if (!best && trials.every((t) => t.skipped) && trials.some((t) => /budget/.test(t.skipped!)) && candidates.length) {
    return {
      chosen: { ...candidates[0].recipe, ...base },
      chosenLabel: candidates[0].label,
      trials,
      fitSamples,
      heldOutSamples: score.size,
      score: 'held-out cross-entropy',
      budgetSeconds: budget,
      seconds: (performance.now() - t0) / 1000,
    };
  }
  if (!best)
    throw new OtfuseError(
      'UNSUPPORTED',
      `no auto-tune candidate could fuse ${models.map((m) => path.basename(m.file)).join(' + ')}: ${trials.map((t) => `${t.label}: ${t.skipped}`).join('; ')}`,
    );
  return {
    chosen: { ...best.recipe, ...base },
    chosenLabel: best.label,
    trials,
    fitSamples,
    heldOutSamples: score.size,
    score: 'held-out cross-entropy',
    budgetSeconds: budget,
    seconds: (performance.now() - t0) / 1000,
  };
}
