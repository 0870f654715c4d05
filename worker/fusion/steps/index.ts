// The alignment's step handlers, one per schedule step kind (schedule.ts), walked in schedule order. A new kind
// of step (e.g. a gated MLP whose gate and up projections share one map) = a step in the schedule and its
// handler here; the compiler asks for the handler.
import { withContext } from '../../errors';
import type { Step } from '../schedule';
import type { Aligner } from './aligner';
import { attentionStep } from './attention';
import { classifierStep } from './classifier';
import { embeddingStep } from './embedding';
import { linearStep } from './linear';
import { normStep } from './norm';
import { residualStep } from './residual';
import { saveStep, stageStep } from './stage';

type Handler<S extends Step> = (al: Aligner, step: S) => void | Promise<void>;

export const STEP_HANDLERS: { [K in Step['kind']]: Handler<Extract<Step, { kind: K }>> } = {
  stage: stageStep,
  embedding: embeddingStep,
  save: saveStep,
  norm: normStep,
  attention: attentionStep,
  linear: linearStep,
  residual: residualStep,
  classifier: classifierStep,
};

/** Runs every step of the schedule, in order. An error from code that knows no file (cost, OT solver) leaves
 * naming the model being aligned, the step and, where the step has one, the layer's node in that model. */
export async function runSchedule(al: Aligner, steps: Step[]): Promise<void> {
  for (const step of steps) {
    try {
      await (STEP_HANDLERS[step.kind] as Handler<Step>)(al, step);
    } catch (err) {
      throw withContext(err, { file: al.B.plan.file, node: nodeOf(al, step) }, `aligning onto ${al.A.plan.file}, step '${step.name}'`);
    }
  }
}

/** The other model's graph node of a step's layer, when the step names one. */
function nodeOf(al: Aligner, step: Step): string | undefined {
  if (!('ref' in step) || !step.ref) return undefined;
  try {
    const r = (step.ref as (p: typeof al.B.plan) => unknown)(al.B.plan);
    return r && typeof r === 'object' && 'node' in r && typeof r.node === 'string' ? r.node : undefined;
  } catch {
    return undefined;
  }
}
