// The LayerNorm step: scale and bias take the slot's map (per hidden neuron); the map passes through unchanged.
import type { NormRef } from '../../graph/analyze';
import { alignVector, toF64, type TMap } from '../maps';
import type { NormStep } from '../schedule';
import type { Aligner } from './aligner';

export function normStep(al: Aligner, step: NormStep): void {
  alignNorm(al, step.ref(al.B.plan), step.ref(al.A.plan), al.slot(step.slot));
}

/** A LayerNorm's parameters moved by `map` (also the token embedding's LayerNorm). */
export function alignNorm(al: Aligner, nb: NormRef | undefined, na: NormRef | undefined, map: TMap | null): void {
  if (!na) return;
  if (!nb) throw al.mismatch(`the anchor has a LayerNorm '${na.node}' that ${al.B.plan.file} lacks`);
  for (const key of ['scale', 'bias'] as const) {
    const pa = na[key],
      pb = nb[key];
    if (!pa) continue;
    if (!pb) throw al.mismatch(`LayerNorm '${nb.node}' has no ${key}`);
    al.put(pa, alignVector(toF64(al.B.params.get(pb).data), map, al.recipe.outNorm));
  }
}
