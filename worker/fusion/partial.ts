// Partial fusion (`--merge-layers K`, issue 28): one ONNX graph with a shared trunk — the fused model's embedding
// and its first K blocks — and, on top of it, every parent's own remaining blocks and head as parallel branches
// whose logits are averaged (ONNX Mean).
//
// The trunk's output lives in the anchor's basis (the fused model is built in it). A non-anchor parent's original
// upper blocks expect their own basis, so each such branch starts with the "unmerge" map: the input-side transport
// map of that parent's block K (T = n·P, the map its aligned block K reads the anchor's stream with), applied as
// x_parent = T·h. This is exactly what the aligned parent's block K does to its input, but every later layer
// runs with the parent's own, unaligned weights: only the one map at the cut can lose information (none when it is
// a permutation), where using the aligned upper blocks would carry every later map's loss as well.
//
// With `fitted` (unmerge.ts), every branch — the anchor's too — starts instead with a map fitted by least squares
// from the fused trunk's stream to that parent's own stream at the cut (x = h·W + b), which serves each parent's
// upper blocks the features they expect as closely as a linear map can.
//
// K = L (all blocks) is today's fusion: the fused model itself. K = 0 shares nothing, not even the embeddings:
// every branch is a whole original parent and the graph computes the parents' logit ensemble (uniform mean).
import { onnx } from 'onnx-proto';
import { OtfuseError } from '../errors';
import { OnnxModel, copyTensor } from '../onnx/model';
import type { ModelPlan } from '../graph/analyze';
import type { TMap } from './maps';
import type { FittedUnmerge } from './unmerge';

/** Metadata key that marks a partial model (HF export refuses it). */
export const PARTIAL_METADATA_KEY = 'otfuse_partial'; // not under lineage's 'otfuse.' prefix, which stampLineage rewrites

export interface PartialInput {
  /** The original models, anchor first. */
  models: OnnxModel[];
  plans: ModelPlan[];
  /** The fully fused model (anchor layout and names). */
  fused: OnnxModel;
  /** cutMaps[k][b]: the input map of model k's block b (k ≥ 1) onto the anchor (null: identity). */
  cutMaps: (TMap | null)[][];
  /** Shared blocks: 0 … layers. */
  k: number;
  /** Also share block K + 1's attention (the cut after its attention residual, before its MLP): K < layers. */
  attention?: boolean;
  /** Fitted unmerge maps at the cut after block K, one per model (anchor first); absent: the transport maps. */
  fitted?: FittedUnmerge[];
}

/** The logits tensor: the graph's only output. */
function outputOf(model: OnnxModel): onnx.IValueInfoProto {
  const outs = model.graph.output ?? [];
  if (outs.length !== 1)
    throw new OtfuseError('UNSUPPORTED', `partial fusion needs a model with one output (the logits); this one has ${outs.length}`, { file: model.file });
  return outs[0];
}

function graphInputNames(model: OnnxModel): Set<string> {
  const inits = new Set(model.initializerNames());
  return new Set((model.graph.input ?? []).map((v) => v.name ?? '').filter((n) => n && !inits.has(n)));
}

/** Indices of the nodes needed to compute `targets`, stopping at `stops` (in graph order). */
function nodesFor(model: OnnxModel, targets: string[], stops: Set<string>): number[] {
  const producer = new Map<string, number>();
  model.nodes.forEach((n, i) => {
    for (const a of n.attribute ?? [])
      if (a.g || a.graphs?.length)
        throw new OtfuseError('UNSUPPORTED', `node '${n.name}' (${n.opType}) has a subgraph; partial fusion cannot cut it`, {
          file: model.file,
          node: n.name ?? undefined,
        });
    for (const o of n.output ?? []) if (o) producer.set(o, i);
  });
  const keep = new Set<number>();
  const stack = [...targets];
  while (stack.length) {
    const t = stack.pop()!;
    if (!t || stops.has(t)) continue;
    const p = producer.get(t);
    if (p === undefined || keep.has(p)) continue;
    keep.add(p);
    for (const i of model.nodes[p].input ?? []) stack.push(i);
  }
  return [...keep].sort((a, b) => a - b);
}

interface GraphParts {
  nodes: onnx.INodeProto[];
  initializers: onnx.ITensorProto[];
}

/**
 * Copies the nodes of `model` (by index) into the new graph with every tensor and node renamed under `prefix`,
 * except the graph inputs; `rename` overrides single tensor names (the cut). Initializers read are copied too
 * (their bytes shared or still deferred).
 */
function copyNodes(model: OnnxModel, indices: number[], prefix: string, rename: Map<string, string>, into: GraphParts): void {
  const inputs = graphInputNames(model);
  const inits = new Map((model.graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const copied = new Set<string>();
  const rn = (t: string | null | undefined): string => {
    if (!t) return '';
    const r = rename.get(t);
    if (r !== undefined) return r;
    if (inputs.has(t)) return t;
    if (inits.has(t) && !copied.has(t)) {
      copied.add(t);
      const c = copyTensor(inits.get(t)!);
      c.name = `${prefix}${t}`;
      into.initializers.push(c);
    }
    return `${prefix}${t}`;
  };
  for (const i of indices) {
    const n = model.nodes[i];
    into.nodes.push(
      onnx.NodeProto.create({ ...n, name: `${prefix}${n.name || `node${i}`}`, input: (n.input ?? []).map(rn), output: (n.output ?? []).map(rn) }),
    );
  }
}

/** The unmerge map as a [m, n] MatMul weight: row-vector stream h (anchor, m) → x = h·Tᵀ (parent, n), T = n·P. */
function unmergeWeight(map: TMap, name: string): onnx.TensorProto {
  const w = new Float32Array(map.m * map.n);
  for (let i = 0; i < map.n; i++) for (let j = 0; j < map.m; j++) w[j * map.n + i] = map.plan[i * map.m + j] * map.n;
  return onnx.TensorProto.create({
    name,
    dataType: onnx.TensorProto.DataType.FLOAT,
    dims: [map.m, map.n],
    rawData: new Uint8Array(w.buffer, w.byteOffset, w.byteLength),
  });
}

function floatTensor(name: string, dims: number[], data: Float32Array): onnx.TensorProto {
  const w = Float32Array.from(data);
  return onnx.TensorProto.create({ name, dataType: onnx.TensorProto.DataType.FLOAT, dims, rawData: new Uint8Array(w.buffer, w.byteOffset, w.byteLength) });
}

/** Nodes of a fitted unmerge: unmerged = h·W + b. */
function fittedNodes(f: FittedUnmerge, trunkOut: string, prefix: string, parts: GraphParts): string {
  const w = floatTensor(`${prefix}unmerge.weight`, [f.m, f.n], f.weight);
  const b = floatTensor(`${prefix}unmerge.bias`, [f.n], f.bias);
  parts.initializers.push(w, b);
  parts.nodes.push(
    onnx.NodeProto.create({ name: `${prefix}unmerge`, opType: 'MatMul', input: [trunkOut, w.name], output: [`${prefix}unmerged_w`] }),
    onnx.NodeProto.create({ name: `${prefix}unmerge_bias`, opType: 'Add', input: [`${prefix}unmerged_w`, b.name], output: [`${prefix}unmerged`] }),
  );
  return `${prefix}unmerged`;
}

/**
 * The stream tensor at the cut: the output of block K (1-based; none at K = 0), or with `attention` the stream after
 * block K + 1's attention residual (its MLP, and everything above, runs in the branches).
 */
export function cutTensor(plan: ModelPlan, k: number, attention = false): string | undefined {
  return attention ? plan.blocks[k].attnAdd : k > 0 ? plan.blocks[k - 1].output : undefined;
}

function checkPartial(input: PartialInput): void {
  const { models, plans, k } = input;
  const layers = plans[0].layers;
  if (!Number.isInteger(k) || k < 0 || k > layers || (input.attention && k >= layers))
    throw new OtfuseError('BAD_USAGE', `--merge-layers ${k}${input.attention ? ' (+ attention)' : ''}: the models have ${layers} blocks (0 … ${layers})`, {
      file: plans[0].file,
    });
  const anchorInputs = graphInputNames(models[0]);
  for (let m = 1; m < models.length; m++) {
    for (const name of graphInputNames(models[m]))
      if (!anchorInputs.has(name))
        throw new OtfuseError('UNSUPPORTED', `partial fusion: input '${name}' is not an input of the anchor ${plans[0].file}`, { file: models[m].file });
    if (cutTensor(plans[0], k, input.attention) && k < layers) {
      const sf = (p: ModelPlan) => p.seqFirst.includes(cutTensor(p, k, input.attention)!);
      if (sf(plans[m]) !== sf(plans[0]))
        throw new OtfuseError('UNSUPPORTED', 'partial fusion: the stream at the cut is sequence-first in one model and batch-first in the other', {
          file: models[m].file,
        });
    }
  }
}

/** The partial model for K shared blocks (the fused model itself when K = layers). */
export function buildPartial(input: PartialInput): OnnxModel {
  checkPartial(input);
  const { models, plans, fused, cutMaps, k } = input;
  const layers = plans[0].layers;
  if (k === layers) return fused;
  const parts: GraphParts = { nodes: [], initializers: [] };
  // The trunk: the fused model's nodes up to the cut (nothing at K = 0).
  const trunkOut = cutTensor(plans[0], k, input.attention);
  if (trunkOut) copyNodes(fused, nodesFor(fused, [trunkOut], new Set()), '', new Map([[trunkOut, trunkOut]]), parts);
  // Nodes' copies above keep their names; their initializers are renamed with '' (i.e. kept).
  const branchOuts: string[] = [];
  models.forEach((model, m) => {
    const prefix = `p${m}/`;
    const plan = plans[m];
    const out = outputOf(model).name ?? '';
    const cut = cutTensor(plan, k, input.attention);
    const rename = new Map<string, string>();
    const fit = input.fitted?.[m];
    if (cut && trunkOut && fit) {
      if (fit.m !== plans[0].hidden || fit.n !== plan.hidden)
        throw new OtfuseError('INTERNAL', `the fitted unmerge at cut ${k} is ${fit.m}×${fit.n}, the models are ${plans[0].hidden} and ${plan.hidden} wide`);
      rename.set(cut, fittedNodes(fit, trunkOut, prefix, parts));
    } else if (cut && trunkOut) {
      // The transport map into block K + 1 reads block K's output; after block K + 1's attention the stream is in
      // the basis of that block's MLP input (the same residual-stream map under the default policies).
      const map = m === 0 ? null : cutMaps[m]?.[k];
      if (map === undefined) throw new OtfuseError('INTERNAL', `no map at block ${k} for model ${m}`, { file: model.file });
      if (map) {
        if (map.m !== plans[0].hidden || map.n !== plan.hidden)
          throw new OtfuseError('INTERNAL', `the map at block ${k} is ${map.n}×${map.m}, the models are ${plan.hidden} and ${plans[0].hidden} wide`);
        const w = unmergeWeight(map, `${prefix}unmerge.weight`);
        parts.initializers.push(w);
        parts.nodes.push(onnx.NodeProto.create({ name: `${prefix}unmerge`, opType: 'MatMul', input: [trunkOut, w.name], output: [`${prefix}unmerged`] }));
        rename.set(cut, `${prefix}unmerged`);
      } else rename.set(cut, trunkOut);
    }
    copyNodes(model, nodesFor(model, [out], new Set(cut ? [cut] : [])), prefix, rename, parts);
    branchOuts.push(`${prefix}${out}`);
  });
  const anchorOut = outputOf(models[0]);
  parts.nodes.push(onnx.NodeProto.create({ name: 'partial/mean_logits', opType: 'Mean', input: branchOuts, output: [anchorOut.name ?? 'logits'] }));
  const src = models[0].graph;
  const inits = new Set(models[0].initializerNames());
  const graph = onnx.GraphProto.create({
    name: `${src.name ?? 'graph'}_partial${k}${input.attention ? 'a' : ''}`,
    node: parts.nodes,
    initializer: parts.initializers,
    input: (src.input ?? []).filter((v) => !inits.has(v.name ?? '')),
    output: [anchorOut],
  });
  const proto = onnx.ModelProto.create({
    ...fused.proto,
    graph,
    metadataProps: [
      ...(fused.proto.metadataProps ?? []),
      { key: PARTIAL_METADATA_KEY, value: JSON.stringify({ mergeLayers: k, ...(input.attention ? { attention: true } : {}), layers, models: models.length }) },
    ],
  });
  return new OnnxModel(proto, fused.file);
}

/** What buildPartial recorded in a partial model's metadata (undefined: not a partial model, or unreadable). */
export function partialMetadata(model: OnnxModel): { mergeLayers: number; attention?: boolean; layers: number; models: number } | undefined {
  const entry = (model.proto.metadataProps ?? []).find((p) => p.key === PARTIAL_METADATA_KEY);
  if (!entry?.value) return undefined;
  try {
    const m = JSON.parse(entry.value) as { mergeLayers?: unknown; attention?: unknown; layers?: unknown; models?: unknown };
    if (![m.mergeLayers, m.layers, m.models].every((v) => Number.isInteger(v))) return undefined;
    return { mergeLayers: m.mergeLayers as number, attention: m.attention === true, layers: m.layers as number, models: m.models as number };
  } catch {
    return undefined;
  }
}

/** Whether a model is a partial fusion (several parents' blocks on one trunk: no single HF class fits it). */
export function isPartialModel(model: OnnxModel): boolean {
  return (model.proto.metadataProps ?? []).some((p) => p.key === PARTIAL_METADATA_KEY);
}
