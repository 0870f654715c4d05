// Small text helpers shared by the tree, notifications and commands.
import path from 'node:path';
import type { DataArg, RunRecord } from '../worker/types';

export function pct(x: number | undefined): string {
  return x === undefined || Number.isNaN(x) ? '—' : `${(100 * x).toFixed(2)}%`;
}

/** The accuracy a run is summarised by: the finetuned fused model, else the fused (or merged) model (by role). */
export function mainAccuracy(record: RunRecord): number | undefined {
  const pick = (role: string) => record.metrics.find((x) => x.role === role && !x.seeds && x.accuracy !== undefined);
  const m = pick('finetuned') ?? pick('fused') ?? pick('merged') ?? record.metrics.find((x) => x.accuracy !== undefined);
  return m?.accuracy;
}

export function dataName(d: DataArg | undefined): string | undefined {
  const p = typeof d === 'string' ? d : d?.path;
  return typeof p === 'string' && p ? path.basename(p) : undefined;
}

/** "on fmnist-test-2k.json" or "on calib200.npz (calibration data!)". */
export function measuredOn(record: RunRecord): string {
  const name = dataName(record.evalData ?? record.data);
  if (!name) return '';
  return record.evalIsCalibration ? `on ${name} — calibration data, not held out` : `on ${name}`;
}
