// Shape "inference by execution": runs the inference graph once on a small probe batch with every
// intermediate tensor exposed, and records each tensor's rank, dims and element type. The gradient rules
// need ranks (which axes broadcast, which transpose undoes which) and element types (constants of the right
// type); dims that depend on the batch are never baked into the emitted graph, only used to spot
// broadcast (size-1) axes, so the probe batch size is chosen to be neither 1 nor a model width.
import * as ort from 'onnxruntime-node';
import { createOrtSession } from '../runtime/session';
import { onnx } from 'onnx-proto';
import { OtfuseError } from '../errors';
import { OnnxModel, dimsOf } from '../onnx/model';
import { DT, dataTypeOf } from './builder';

export interface TensorInfo {
  dims: number[];
  dataType: number;
}

export type ProbeFeeds = Record<string, ort.Tensor>;

export const PROBE_BATCH = 3;

/** Random probe inputs built from the model's declared input shapes (symbolic dims → PROBE_BATCH). */
export function defaultProbeFeeds(model: OnnxModel, seed = 1): ProbeFeeds {
  const initNames = new Set(model.initializerNames());
  const feeds: ProbeFeeds = {};
  let s = seed >>> 0 || 1;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  for (const input of model.graph.input ?? []) {
    const name = input.name ?? '';
    if (initNames.has(name)) continue;
    const tt = input.type?.tensorType;
    const dims = (tt?.shape?.dim ?? []).map((d) =>
      d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue) > 0 ? Number(d.dimValue) : PROBE_BATCH,
    );
    const count = dims.reduce((a, b) => a * b, 1);
    switch (tt?.elemType) {
      case DT.FLOAT:
        feeds[name] = new ort.Tensor('float32', Float32Array.from({ length: count }, rand), dims);
        break;
      case DT.DOUBLE:
        feeds[name] = new ort.Tensor('float64', Float64Array.from({ length: count }, rand), dims);
        break;
      // Token ids, masks, type ids: zeros are valid for all of them.
      case DT.INT64:
        feeds[name] = new ort.Tensor('int64', new BigInt64Array(count), dims);
        break;
      case DT.INT32:
        feeds[name] = new ort.Tensor('int32', new Int32Array(count), dims);
        break;
      default:
        throw new OtfuseError('UNSUPPORTED', `input '${name}' has an element type the trainer cannot probe`, { file: model.file });
    }
  }
  return feeds;
}

/** Runs the model once and returns dims/type of every tensor (inputs, initializers, node outputs). */
export async function probeShapes(model: OnnxModel, feeds: ProbeFeeds): Promise<Map<string, TensorInfo>> {
  return (await probeShapesEach(model, [feeds]))[0];
}

/** probeShapes for several feed sets (e.g. several sequence lengths) through one session. */
export async function probeShapesEach(model: OnnxModel, feedSets: ProbeFeeds[]): Promise<Map<string, TensorInfo>[]> {
  const base = new Map<string, TensorInfo>();
  for (const t of model.graph.initializer ?? []) base.set(t.name ?? '', { dims: dimsOf(t), dataType: t.dataType ?? 0 });
  const probe = model.clone();
  const names: string[] = [];
  const inputs = new Set(Object.keys(feedSets[0] ?? {}));
  const seen = new Set<string>((probe.graph.output ?? []).map((o) => o.name ?? ''));
  for (const n of probe.nodes) for (const o of n.output ?? []) if (o && !base.has(o) && !inputs.has(o)) names.push(o);
  probe.graph.output = [...(probe.graph.output ?? []), ...names.filter((n) => !seen.has(n)).map((name) => onnx.ValueInfoProto.create({ name }))];
  let session: ort.InferenceSession;
  try {
    // No graph optimisation: every exposed tensor must keep the value the unoptimised graph gives it.
    session = await createOrtSession(probe.toBytes(), { optimization: 'disabled' });
  } catch (err) {
    throw new OtfuseError('BAD_MODEL', `ONNX Runtime cannot load the model for shape probing: ${(err as Error).message.split('\n')[0]}`, { file: model.file });
  }
  try {
    const infos: Map<string, TensorInfo>[] = [];
    for (const feeds of feedSets) {
      const info = new Map(base);
      for (const [name, t] of Object.entries(feeds)) info.set(name, { dims: [...t.dims], dataType: dataTypeOf(t.type) });
      const out = await session.run(feeds);
      for (const [name, t] of Object.entries(out)) info.set(name, { dims: [...t.dims], dataType: dataTypeOf(t.type) });
      infos.push(info);
    }
    return infos;
  } catch (err) {
    throw new OtfuseError('BAD_MODEL', `probe run failed: ${(err as Error).message.split('\n')[0]}`, { file: model.file });
  } finally {
    await session.release();
  }
}
