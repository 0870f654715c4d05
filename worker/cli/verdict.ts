// The demo's closing paragraph (otfuse demo), from a run record's typed metric rows (never their labels).
import type { RunRecord } from '../types';
import { parentRows } from '../runs/roles';

/** One honest paragraph: fused + finetune against the better parent given the same finetune and the ensemble. */
export function demoVerdict(r: RunRecord): string {
  const pct = (v: number) => `${(v * 100).toFixed(2)} %`;
  const fused = r.metrics.find((m) => m.role === 'finetuned' && m.seeds);
  const parentsTuned = r.metrics.filter((m) => m.role === 'baseline' && m.seeds && (m.start === 'anchor' || m.start === 'parent'));
  const parents = parentRows(r.metrics);
  const ens = r.metrics.find((m) => m.role === 'ensemble');
  if (!fused || !parentsTuned.length || fused.accuracy === undefined) return '';
  const bestTuned = parentsTuned.reduce((a, b) => ((b.accuracy ?? 0) > (a.accuracy ?? 0) ? b : a));
  const bestParent = Math.max(...parents.map((p) => p.accuracy ?? 0));
  const beatsParents = fused.accuracy > bestParent;
  const vsTuned = fused.accuracy - (bestTuned.accuracy ?? 0);
  return [
    `verdict     fused + finetune ${pct(fused.accuracy)} ± ${((fused.sd ?? 0) * 100).toFixed(2)} vs the parents ${parents.map((p) => pct(p.accuracy ?? 0)).join(' / ')}: ${beatsParents ? 'better than both' : 'NOT better than the better parent'};`,
    `            vs the better parent given the same finetune ${pct(bestTuned.accuracy ?? 0)}: ${vsTuned >= 0 ? `+${(vsTuned * 100).toFixed(2)}` : (vsTuned * 100).toFixed(2)} points${vsTuned < 0 ? ' (fusion loses here)' : ''};`,
    `            ensemble ceiling ${ens?.accuracy !== undefined ? pct(ens.accuracy) : '—'} (needs both models at inference). Full 10k-test numbers: BENCHMARKS.md (fusion quality).`,
  ].join('\n');
}
