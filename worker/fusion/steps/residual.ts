// The residual join: the map after an Add combines the skip path's and the branch's maps by the residual policy
// (RESIDUAL_POLICIES in registry.ts), weighted where the policy asks by the anchor's mean |activation|.
import type { ResidualStep } from '../schedule';
import type { Aligner } from './aligner';

export function residualStep(al: Aligner, step: ResidualStep): void {
  const { A } = al;
  const map = al.residual(step.name, al.mapOf(step.skip), al.mapOf(step.branch), al.absOf(step.skipTensor(A.plan)), al.absOf(step.branchTensor(A.plan)));
  al.setSlot(step.out, map);
}
