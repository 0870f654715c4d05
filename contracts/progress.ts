// Words and times for a running job (pure, no vscode; unit-tested): the stage's name (the baseline phase named,
// so that a percentage restarting says why), elapsed time, and the time left — overall when a previous run of the
// same job tells how long it takes, else for the current stage from its own rate.

export interface Timing {
  /** ms since the epoch */
  startedAt: number;
  stageStartedAt: number;
  /** How long the whole job took last time (seconds), when known. */
  expectedSeconds?: number;
}

/** "12 s", "1 min 05 s", "1 h 02 min". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

const STAGES: Record<string, string> = {
  load: 'loading models',
  analyze: 'analysing graphs',
  autotune: 'auto-tuning the recipe',
  activations: 'capturing activations',
  align: 'aligning layers (OT)',
  refit: 'refitting layers',
  write: 'writing the fused model',
  evaluate: 'evaluating',
  baselines: 'baselines: parents finetuned the same way',
  finetune: 'finetuning the fused model',
  start: 'starting',
  done: 'finishing',
};

/** The stage in words; a finetune of the anchor (the baseline the fused model is read against) is named as such. */
export function stageName(stage: string, message?: string): string {
  if (stage === 'finetune' && message && /^baseline\b/i.test(message)) return 'baseline: the anchor finetuned the same way';
  return STAGES[stage] ?? stage;
}

/** Elapsed and remaining time at `now` for a stage at done/total. */
export function timeText(now: number, t: Timing, done?: number, total?: number): { elapsed: string; left?: string; overall: boolean } {
  const elapsed = (now - t.startedAt) / 1000;
  const inStage = (now - t.stageStartedAt) / 1000;
  const stageLeft = done && total && done < total && inStage > 0.5 ? (inStage * (total - done)) / done : undefined;
  if (t.expectedSeconds !== undefined && t.expectedSeconds > 0) {
    // Overall from the last run of this job, never below what the current stage alone still needs.
    const left = Math.max(t.expectedSeconds - elapsed, stageLeft ?? 0);
    return { elapsed: duration(elapsed), left: left > 0 ? duration(left) : undefined, overall: true };
  }
  return { elapsed: duration(elapsed), left: stageLeft !== undefined ? duration(stageLeft) : undefined, overall: false };
}

/** One line: "aligning layers (OT) 45% · 12 s elapsed · about 20 s left". */
export function progressLine(now: number, t: Timing, stage: string, message?: string, done?: number, total?: number): string {
  const pct = total ? ` ${Math.round((100 * (done ?? 0)) / total)}%` : '';
  const time = timeText(now, t, done, total);
  const left = time.left ? ` · about ${time.left} left${time.overall ? '' : ' in this stage'}` : '';
  return `${stageName(stage, message)}${pct} · ${time.elapsed} elapsed${left}`;
}
