// The linear step: W_O after attention, the MLP's fc1 and fc2, a pooler, a masked-LM transform. The input side
// takes the `in` slot's map, the outputs one OT map (or, with `fixedOut`, a given slot's map) into `out`.
import { alignOutput } from '../maps';
import type { LinearStep } from '../schedule';
import type { Aligner } from './aligner';

export async function linearStep(al: Aligner, step: LinearStep): Promise<void> {
  const la = step.ref(al.A.plan),
    lb = step.ref(al.B.plan);
  if (!la) return;
  if (!lb) throw al.mismatch(`the anchor has a ${step.mapKind === 'pooler' ? 'pooler' : `layer '${step.name}'`}, the other model not`);
  if (step.fixedOut) {
    // No OT: the outputs take a given map (the masked-LM transform takes the embedding map).
    const map = al.mapOf(step.fixedOut);
    al.putLinear(la, alignOutput(al.inAligned(lb, la, al.slot(step.in)), la.inDim, map, al.recipe.outNorm), al.mapBias(al.biasOf(al.B, lb), map));
    al.setSlot(step.out, map);
  } else al.setSlot(step.out, await al.linear(step.name, step.mapKind, lb, la, al.slot(step.in)));
}
