// The partial-fusion curve as the run panel draws it (no DOM: unit-tested in test/ui/pareto.test.ts): one point per
// measured K from run.json `partial.points`, the parents next to them (each at its own size), the ensemble (K = 0) and full fusion
// (K = all blocks) named, the chosen K marked. The quality axis is accuracy (higher is better), or perplexity
// (e^loss, lower is better) when the run's evaluation is a causal LM's.
import type { ModelMetrics, RunRecord } from '../contracts/protocol';

export type ParetoKind = 'ensemble' | 'partial' | 'full' | 'parent';

export interface ParetoPoint {
  /** Shared blocks K (parents: undefined). */
  k?: number;
  kind: ParetoKind;
  label: string;
  parameters: number;
  /** Parameters / one parent's (the anchor's). */
  ratio: number;
  /** Partial models (0 < K < layers): the trunk chosen on held-out calibration rows ('fused', 'anchor', 'fitted'). */
  trunk?: string;
  /** Accuracy (0…1) or perplexity; undefined when not measured. */
  value?: number;
  chosen: boolean;
}

export interface ParetoData {
  metric: 'accuracy' | 'perplexity';
  lowerIsBetter: boolean;
  layers: number;
  chosenK: number;
  parentParameters: number;
  /** The partial models, K = 0 … layers (as recorded). */
  points: ParetoPoint[];
  /** The parents as evaluated in the run, each at its own parameter count (run.json partial.modelParameters; the
   * anchor's count for runs that did not record it). */
  parents: ParetoPoint[];
}

/** "K = 0 · ensemble", "K = 2", "K = 4 · full fusion" (short: the table fits a narrow side bar). */
export function pointLabel(k: number, layers: number): string {
  if (k === 0) return 'K = 0 · ensemble';
  if (k === layers) return `K = ${layers} · full fusion`;
  return `K = ${k}`;
}

/** "2 of 4 blocks shared; each parent keeps blocks 3–4 and its head" (the row's tooltip). */
export function pointDescription(k: number, layers: number): string {
  if (k === 0) return "nothing shared: the parents' logit ensemble";
  if (k === layers) return `all ${layers} blocks fused: one model`;
  return `embeddings and ${k} of ${layers} blocks shared; each parent keeps blocks ${k + 1}–${layers} and its head as a branch`;
}

const perplexityOf = (loss?: number) => (loss === undefined || !Number.isFinite(loss) ? undefined : Math.exp(loss));

/** The chart's data, or undefined when the run recorded no curve (no `--pareto`). */
export function paretoData(r: RunRecord): ParetoData | undefined {
  const p = r.partial;
  if (!p?.points?.length) return undefined;
  const lm = r.metrics.some((m) => m.perplexity !== undefined);
  const metric = lm ? 'perplexity' : 'accuracy';
  const of = (m: { accuracy?: number; loss?: number; perplexity?: number }) => (lm ? (m.perplexity ?? perplexityOf(m.loss)) : m.accuracy);
  const ratio = (n: number) => n / p.parentParameters;
  const points: ParetoPoint[] = [...p.points]
    .sort((a, b) => a.mergeLayers - b.mergeLayers)
    .map((q) => ({
      k: q.mergeLayers,
      kind: q.mergeLayers === 0 ? 'ensemble' : q.mergeLayers === p.layers ? 'full' : 'partial',
      label: pointLabel(q.mergeLayers, p.layers),
      parameters: q.parameters,
      ratio: ratio(q.parameters),
      value: of(q),
      chosen: q.mergeLayers === p.mergeLayers,
      ...(q.trunk ? { trunk: q.trunk } : {}),
    }));
  const parentRows = r.metrics.filter((m: ModelMetrics) => m.role === 'parent' || m.role === 'anchor');
  const own = (m: ModelMetrics) => (m.model !== undefined ? p.modelParameters?.[m.model] : undefined) ?? p.parentParameters;
  const parents: ParetoPoint[] = parentRows.map((m) => ({
    kind: 'parent',
    label: m.label,
    parameters: own(m),
    ratio: ratio(own(m)),
    value: of(m),
    chosen: false,
  }));
  return { metric, lowerIsBetter: lm, layers: p.layers, chosenK: p.mergeLayers, parentParameters: p.parentParameters, points, parents };
}

/** A value as the table and the tooltip show it. */
export function formatValue(d: Pick<ParetoData, 'metric'>, v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  return d.metric === 'accuracy' ? `${(100 * v).toFixed(2)}%` : v.toFixed(2);
}

/** "1.35×" */
export const formatRatio = (x: number) => `${x.toFixed(2)}×`;

/** Points on the Pareto front (no other point at most as large and at least as good, strictly better in one). */
export function paretoFront(d: ParetoData): Set<ParetoPoint> {
  const all = [...d.points, ...d.parents].filter((q) => q.value !== undefined);
  const better = (a: number, b: number) => (d.lowerIsBetter ? a < b : a > b);
  const front = new Set<ParetoPoint>();
  for (const q of all) {
    const dominated = all.some(
      (o) => o !== q && o.parameters <= q.parameters && !better(q.value!, o.value!) && (o.parameters < q.parameters || better(o.value!, q.value!)),
    );
    if (!dominated) front.add(q);
  }
  return front;
}
