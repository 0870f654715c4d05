// Metric rows by what they measured (ModelMetrics.role), never by their display label: lookups, the key a row is
// replaced by, and the accuracies a model's lineage lists.
import type { MetricRole, ModelMetrics } from '../types';

export const METRIC_ROLES: readonly MetricRole[] = ['parent', 'anchor', 'vanilla', 'fused', 'finetuned', 'ensemble', 'baseline', 'base', 'merged'];

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

export function rowsOf(metrics: ModelMetrics[], role: MetricRole, start?: ModelMetrics['start']): ModelMetrics[] {
  return metrics.filter((m) => m.role === role && (start === undefined || m.start === start));
}

/** The parents as given (the anchor among them). */
export function parentRows(metrics: ModelMetrics[]): ModelMetrics[] {
  return metrics.filter((m) => m.role === 'parent' || m.role === 'anchor');
}

/** The headline row of a run: the fused model (or, when it was finetuned, the finetuned one). */
export function fusedRow(metrics: ModelMetrics[], finetuned = false): ModelMetrics | undefined {
  const pick = (role: MetricRole) => metrics.find((m) => m.role === role && !m.seeds && m.accuracy !== undefined);
  return (finetuned ? pick('finetuned') : undefined) ?? pick('fused');
}
