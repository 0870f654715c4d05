// Schedule plumbing: the start of an activation stage (staged capture prepares its activations; a block's
// structure is checked against the anchor's) and the copy of a slot's map (the skip path of the next Add).
import type { SaveStep, StageStep } from '../schedule';
import type { Aligner } from './aligner';

export async function stageStep(al: Aligner, step: StageStep): Promise<void> {
  await al.ctx.prepare?.(step.stage);
  if (step.block === undefined) return;
  const i = step.block,
    ba = al.A.plan.blocks[i],
    bb = al.B.plan.blocks[i];
  if (ba.norm !== bb.norm) throw al.mismatch(`block ${i} is ${bb.norm}-LN, the anchor's is ${ba.norm}-LN`);
  if (ba.attn.heads !== bb.attn.heads) throw al.mismatch(`block ${i} has ${bb.attn.heads} heads, the anchor ${ba.attn.heads}`);
}

export function saveStep(al: Aligner, step: SaveStep): void {
  al.setSlot(step.to, al.slot(step.from));
}
