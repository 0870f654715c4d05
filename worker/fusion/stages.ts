// Splits an ONNX graph into consecutive stage subgraphs for activation capture: stage g holds the nodes that its
// target tensors need and that no earlier stage computed. Each stage runs as its own small session fed with the
// cached outputs of earlier stages (its live-ins), so the whole model is computed once per capture, not once per
// stage, and every session holds only its own stage's weights.
import { onnx } from 'onnx-proto';
import { OtfuseError } from '../errors';
import { OnnxModel } from '../onnx/model';
import type { StreamInfo } from './streams';

export interface StagePart {
  index: number;
  /** Node indices of the source graph, in its (topological) order. */
  nodes: number[];
  /** Source-graph inputs this stage reads (fed from the dataset). */
  graphInputs: string[];
  /** Tensors computed by earlier stages that this stage reads or captures (fed from the cache). */
  liveIns: string[];
  /** Tensors this stage computes and hands out: its targets and what later stages read. */
  outputs: string[];
  /** Cached tensors whose last reader is this stage (dropped after it). */
  release: string[];
  /** Tapped tensors this stage computes (also in `outputs`). */
  taps: string[];
}

export interface StagePlan {
  parts: StagePart[];
  /** The graph's inputs (not initializers). */
  inputs: string[];
  /** Taps no stage computes (graph inputs, initializers). */
  untapped: string[];
}

/**
 * targets[g]: the tensors stage g must make available (computed there or cached from before). `taps`: tensors to
 * hand out where they are computed (an output of the stage that computes them, never cached); a tap no target
 * needs is computed in the last stage. Graph inputs and initializers cannot be tapped (`untapped` lists them).
 */
export function planStages(model: OnnxModel, targets: string[][], taps: readonly string[] = []): StagePlan {
  const g = model.graph;
  const nodes = model.nodes;
  const inits = new Set((g.initializer ?? []).map((t) => t.name ?? ''));
  const inputs = (g.input ?? []).map((v) => v.name ?? '').filter((n) => !inits.has(n));
  const inputSet = new Set(inputs);
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => {
    for (const a of n.attribute ?? []) {
      if (a.g || (a.graphs && a.graphs.length))
        throw new OtfuseError('UNSUPPORTED', `node '${n.name}' (${n.opType}) has a subgraph; staged capture cannot split it`, {
          file: model.file,
          node: n.name ?? undefined,
        });
    }
    for (const o of n.output ?? []) if (o) producer.set(o, i);
  });
  const stageOf = new Int32Array(nodes.length).fill(-1);
  const producedIn = new Map<string, number>();
  for (let s = 0; s <= targets.length; s++) {
    // The pass after the last group assigns what only the taps need to the last stage.
    const stack = s < targets.length ? [...targets[s]] : [...taps];
    const into = Math.min(s, targets.length - 1);
    while (stack.length) {
      const t = stack.pop()!;
      if (!t || inits.has(t) || inputSet.has(t) || producedIn.has(t)) continue;
      const p = producer.get(t);
      if (p === undefined) throw new OtfuseError('BAD_MODEL', `tensor '${t}' is produced by no node`, { file: model.file });
      if (stageOf[p] >= 0) continue;
      stageOf[p] = into;
      for (const o of nodes[p].output ?? []) if (o) producedIn.set(o, into);
      for (const i of nodes[p].input ?? []) if (i) stack.push(i);
    }
  }
  const parts: StagePart[] = targets.map((_, s) => ({ index: s, nodes: [], graphInputs: [], liveIns: [], outputs: [], release: [], taps: [] }));
  nodes.forEach((_, i) => {
    if (stageOf[i] >= 0) parts[stageOf[i]].nodes.push(i);
  });
  const lastUse = new Map<string, number>();
  for (const part of parts) {
    const s = part.index;
    const graphIns = new Set<string>(),
      live = new Set<string>();
    const read = (t: string) => {
      if (!t || inits.has(t)) return;
      if (inputSet.has(t)) graphIns.add(t);
      else if ((producedIn.get(t) ?? s) < s) live.add(t);
    };
    for (const i of part.nodes) for (const t of nodes[i].input ?? []) read(t);
    for (const t of targets[s]) read(t);
    part.graphInputs = [...graphIns];
    part.liveIns = [...live];
    for (const t of live) lastUse.set(t, Math.max(lastUse.get(t) ?? -1, s));
  }
  for (const part of parts) {
    const outs = new Set<string>();
    for (const t of targets[part.index]) if (producedIn.get(t) === part.index) outs.add(t);
    for (const [t, last] of lastUse) if (producedIn.get(t) === part.index && last > part.index) outs.add(t);
    part.taps = taps.filter((t) => producedIn.get(t) === part.index);
    for (const t of part.taps) outs.add(t);
    part.outputs = [...outs];
  }
  for (const [t, last] of lastUse) parts[last].release.push(t);
  return { parts, inputs, untapped: taps.filter((t) => !producedIn.has(t)) };
}

const ORT_TO_ONNX: Record<string, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  float64: onnx.TensorProto.DataType.DOUBLE,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  int8: onnx.TensorProto.DataType.INT8,
  uint8: onnx.TensorProto.DataType.UINT8,
  bool: onnx.TensorProto.DataType.BOOL,
};

/** The stage as a model of its own: its nodes and only the initializers they read (shared, not copied). */
export function stageModel(model: OnnxModel, part: StagePart, liveInTypes: Map<string, StreamInfo>): OnnxModel {
  const g = model.graph;
  const nodes = part.nodes.map((i) => model.nodes[i]);
  const used = new Set<string>();
  for (const n of nodes) for (const t of n.input ?? []) if (t) used.add(t);
  const initializer = (g.initializer ?? []).filter((t) => used.has(t.name ?? ''));
  const byName = new Map((g.input ?? []).map((v) => [v.name ?? '', v]));
  const input: onnx.IValueInfoProto[] = part.graphInputs.map((n) => byName.get(n)!);
  for (const t of part.liveIns) {
    const sample = liveInTypes.get(t);
    if (!sample) throw new OtfuseError('INTERNAL', `stage ${part.index}: no cached value for '${t}'`, { file: model.file });
    const elemType = ORT_TO_ONNX[sample.type];
    if (elemType === undefined)
      throw new OtfuseError('UNSUPPORTED', `stage ${part.index}: tensor '${t}' has element type ${sample.type}`, { file: model.file });
    input.push(
      onnx.ValueInfoProto.create({ name: t, type: { tensorType: { elemType, shape: { dim: sample.dims.map((_, k) => ({ dimParam: `${t}_d${k}` })) } } } }),
    );
  }
  const graph = onnx.GraphProto.create({
    name: `${g.name ?? 'graph'}_stage${part.index}`,
    node: nodes,
    initializer,
    input,
    output: part.outputs.map((name) => onnx.ValueInfoProto.create({ name })),
  });
  const proto = onnx.ModelProto.create({ irVersion: model.proto.irVersion, opsetImport: model.proto.opsetImport, producerName: 'otfuse-stage', graph });
  return new OnnxModel(proto, model.file);
}
