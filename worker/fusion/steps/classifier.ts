// The classifier step: the input side only; its outputs are the classes and are never permuted. A decoder tied
// to the word embedding was aligned with the embedding already: only its bias is written.
import type { ClassifierStep } from '../schedule';
import { biasRegion } from '../slices';
import type { Aligner } from './aligner';

export function classifierStep(al: Aligner, step: ClassifierStep): void {
  const { A, B } = al;
  const ha = A.plan.head,
    hb = B.plan.head;
  if (ha.classes !== hb.classes) throw al.mismatch(`${hb.classes} classes vs the anchor's ${ha.classes}`);
  const la = step.ref(A.plan),
    lb = step.ref(B.plan);
  if (step.tied) {
    // The weight is the embedding table, aligned once by the embedding with this very map: write the bias only.
    if (la.weight !== A.plan.head.mlm?.table || lb.weight !== B.plan.head.mlm?.table)
      throw al.mismatch(`decoder '${lb.node}' is not tied to the word embedding in both models`, lb.node);
    al.ctx.onLinear?.(la, al.slot(step.in));
    const b = al.biasOf(B, lb);
    if (la.bias && b) al.put(la.bias, b, biasRegion(la, A.params.get(la.bias).data.length));
    else if (la.bias) throw al.mismatch(`layer '${la.node}' has a bias in the anchor but not in ${B.plan.file}`);
    return;
  }
  al.putLinear(la, al.inAligned(lb, la, al.slot(step.in)), al.biasOf(B, lb));
}
