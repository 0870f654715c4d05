// Aligns one model onto the anchor along the plan derived from the graph (MISSION §2): for each layer the input
// side takes the incoming map, a cost between the layer's output neurons and the anchor's (activations or
// weights) gives an OT map, the output side is moved onto the anchor's neurons, and the map flows on —
// through LayerNorms unchanged, into residual Adds via the residual policy, from V into W_O's input side.
// The schedule (schedule.ts) lists the steps; steps/ holds one handler per step kind and the strategies they
// choose from (align-by, Q/K mode, attention pattern). Results are keyed by the anchor's parameter names, in the
// anchor's storage layout.
import { OtfuseError } from '../errors';
import { compileSchedule } from './schedule';
import { ParamSink, type ParamValues } from './slices';
import { Spool } from '../onnx/spool';
import { Aligner, type AlignContext, type MapRecord } from './steps/aligner';
import { runSchedule } from './steps/index';
import type { Params } from '../onnx/params';

export type { AlignContext, MapRecord, Params };

/** Aligned values of the other model, keyed by anchor parameter name (anchor layout, float32), spooled to a temp
 * file: the caller releases them. */
export type Aligned = ParamValues;

export async function alignModel(ctx: AlignContext): Promise<Aligned> {
  // Whole aligned initializers wait in a temp file (read back by the average and the refit), not in memory.
  const spool = new Spool('otfuse-aligned.spool');
  try {
    return await alignInto(ctx, spool);
  } catch (err) {
    spool.release();
    throw err;
  }
}

async function alignInto(ctx: AlignContext, spool: Spool): Promise<Aligned> {
  const { anchor: A, other: B } = ctx;
  if (A.plan.blocks.length !== B.plan.blocks.length)
    throw new OtfuseError('MISMATCH', `${B.plan.blocks.length} blocks vs the anchor's ${A.plan.blocks.length}`, { file: B.plan.file });
  const sink = new ParamSink((name) => A.params.get(name).data.length, A.plan.file, spool);
  await runSchedule(new Aligner(ctx, sink), compileSchedule(A.plan));
  return sink.finish();
}
