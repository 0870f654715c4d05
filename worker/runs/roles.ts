// Metric rows by what they measured (ModelMetrics.role), never by their display label: the roles, the key a row is
// replaced by, and the parents among the rows.
import type { MetricRole, ModelMetrics } from '../types';

// A Record, so that a role added to MetricRole (worker/types.ts) and not here fails to compile.
const ROLES: Record<MetricRole, true> = {
  parent: true,
  anchor: true,
  vanilla: true,
  fused: true,
  finetuned: true,
  ensemble: true,
  baseline: true,
  base: true,
  merged: true,
  aligned: true,
};
export const METRIC_ROLES = Object.keys(ROLES) as readonly MetricRole[];

/** A row's identity within a run: role, start and parent index; seeded protocol rows (FuseRequest.baselines) are
 * distinct from the single finetune of the run. */
export function rowKey(m: ModelMetrics): string {
  return [m.role, m.start ?? '', m.model ?? '', m.seeds ? 'seeds' : ''].join('|');
}

/** Replaces the row with the same key (or appends). */
export function upsertRow(metrics: ModelMetrics[], row: ModelMetrics): ModelMetrics[] {
  const key = rowKey(row);
  const out = metrics.filter((m) => rowKey(m) !== key);
  out.push(row);
  return out;
}

/** The parents as given (the anchor among them). */
export function parentRows(metrics: ModelMetrics[]): ModelMetrics[] {
  return metrics.filter((m) => m.role === 'parent' || m.role === 'anchor');
}
