// Multi-head self-attention: the Q, K, V projections (separate, or packed into one initializer and split),
// the head split, QKᵀ → Softmax → ·V. Q, K and V are told apart by their role in the attention pattern (left /
// right operand of the score MatMul, right operand of the context MatMul), never by name.
// Packed projections come in two forms, both evaluated from the graph's shape arithmetic rather than matched
// op by op:
//   - nn.MultiheadAttention (torch 1.13): one in_proj MatMul [E, 3E] + bias, three Slices on the last axis whose
//     bounds are computed at run time (Shape → Gather → Add → Div → Mul);
//   - timm / GPT-2 style: one qkv Linear → Reshape [B, T, 3, H, d] → Transpose → Split / Gather on the "3" axis
//     (or a Split of the last axis).
import type { NodeProto } from '../../onnx/model';
import { GraphIndex, SHAPE_OPS } from '../ir';
import type { AttentionRef, LinearRef, TensorView } from '../plan';
import { sliceRange } from '../shapes';
import { isDownstreamOf } from './common';

const SCORE_OPS = new Set(['Div', 'Mul', 'Add', 'Sub', 'Softmax', 'Where', 'Cast', 'Identity', 'Dropout']);

/** One projection (a whole linear layer, or one range of a packed one) and where its values go next. */
export interface ProjPart {
  lin: LinearRef;
  /** The tensor holding only this part's values, to follow to the attention MatMul. */
  from: string;
  /** Nodes between the projection and `from` (reshape/transpose of a packed output). */
  pre: NodeProto[];
}

/** The parts of the projections `lins`: packed ones are split into their ranges; views are recorded in `views`. */
export function projectionParts(g: GraphIndex, lins: LinearRef[], views: Record<string, TensorView>): ProjPart[] {
  const parts: ProjPart[] = [];
  for (const lin of lins) parts.push(...(splitPacked(g, lin, views) ?? [{ lin, from: lin.out, pre: [] }]));
  return parts;
}

function sub(lin: LinearRef, offset: number, size: number, out: string): LinearRef {
  return { ...lin, outDim: size, out, slice: { offset, size } };
}

function viewName(tensor: string, offset: number, size: number): string {
  return `${tensor}[${offset}:${offset + size}]`;
}

/** What a packed-projection form sees: the projection, its output's shape and consumers. */
interface PackedContext {
  g: GraphIndex;
  lin: LinearRef;
  views: Record<string, TensorView>;
  width: number;
  shape: (number | null)[] | undefined;
  cons: NodeProto[];
  lastAxis: (a: number | null | undefined) => boolean;
}

/** One way a packed Q/K/V projection is split in the graph: its parts, or undefined when the form does not apply. */
export interface PackedProjectionForm {
  name: string;
  split: (c: PackedContext) => ProjPart[] | undefined;
}

/** (1) Slices of the last axis (nn.MultiheadAttention's in_proj), bounds from shape arithmetic. */
function splitBySlices({ g, lin, width, shape, cons, lastAxis }: PackedContext): ProjPart[] | undefined {
  if (!(cons.length >= 2 && cons.every((n) => n.opType === 'Slice'))) return undefined;
  const rank = shape?.length;
  const parts: ProjPart[] = [];
  for (const n of cons) {
    const ins = n.input ?? [];
    const starts = g.shapes.value(ins[1]),
      ends = g.shapes.value(ins[2]);
    const axes = ins[3] ? g.shapes.value(ins[3]) : rank !== undefined ? [0] : undefined;
    const steps = ins[4] ? g.shapes.value(ins[4]) : [1];
    if (!starts || !ends || !axes || !steps || starts.length !== 1 || (!lastAxis(axes[0]) && !(rank === 1 && axes[0] === 0))) {
      throw g.unsupported(
        n,
        `cannot evaluate which part of the packed projection '${lin.node}' this Slice takes (expected constant shape arithmetic on the last axis)`,
      );
    }
    const r = sliceRange(width, starts[0], ends[0], steps[0]);
    if (!r || r.size === 0)
      throw g.unsupported(n, `Slice of the packed projection '${lin.node}' has bounds that are not a step-1 range of its ${width} outputs`);
    parts.push({ lin: sub(lin, r.start, r.size, n.output![0]), from: n.output![0], pre: [n] });
  }
  return checkCover(g, lin, parts);
}

/** (2) Split of the last axis (GPT-2's c_attn.split(E, dim=2)). */
function splitBySplit({ g, lin, width, cons, lastAxis }: PackedContext): ProjPart[] | undefined {
  if (cons.length !== 1) return undefined;
  const n = cons[0];
  if (n.opType !== 'Split') return undefined;
  if (!lastAxis(g.attrInt(n, 'axis') ?? 0)) return undefined;
  const sizes = g.shapes.splitSizes(n, width);
  if (!sizes) throw g.unsupported(n, `cannot evaluate the split sizes of the packed projection '${lin.node}'`);
  let off = 0;
  const parts = (n.output ?? []).map((o, i) => {
    const p = { lin: sub(lin, off, sizes[i], o), from: o, pre: [n] };
    off += sizes[i];
    return p;
  });
  return checkCover(g, lin, parts);
}

/** (3) Reshape splitting the last axis into [k, …] (k = 3 for qkv), optional Transpose, then Split / Gather along
 * the k axis: each index is a contiguous range of width / k outputs. */
function splitByReshape({ g, lin, views, width, shape, cons }: PackedContext): ProjPart[] | undefined {
  if (cons.length !== 1) return undefined;
  const n = cons[0];
  if (n.opType !== 'Reshape' || !shape) return undefined;
  const target = g.shapes.shape(n.output![0]);
  if (!target || target.length <= shape.length) return undefined;
  const lead = shape.length - 1;
  const tail = target.slice(lead);
  if (tail.some((d) => d === null) || (tail as number[]).reduce((a, b) => a * b, 1) !== width) return undefined;
  const k = tail[0] as number;
  if (k < 2) return undefined;
  const inner = width / k;
  const pre: NodeProto[] = [n];
  let axis = lead;
  let t = n.output![0];
  let next = g.dataConsumers(t);
  if (next.length === 1 && next[0].opType === 'Transpose') {
    const perm = g.attrInts(next[0], 'perm') ?? [];
    axis = perm.indexOf(axis);
    pre.push(next[0]);
    t = next[0].output![0];
    next = g.dataConsumers(t);
  }
  const norm = (a: number) => (a < 0 ? a + target.length : a);
  const parts: ProjPart[] = [];
  const add = (offset: number, size: number, from: string, via: NodeProto[]) => {
    const name = viewName(lin.out, offset, size);
    views[name] = { tensor: lin.out, offset, size };
    parts.push({ lin: sub(lin, offset, size, name), from, pre: via });
  };
  if (next.length === 1 && next[0].opType === 'Split' && norm(g.attrInt(next[0], 'axis') ?? 0) === axis) {
    const sizes = g.shapes.splitSizes(next[0], k);
    if (!sizes) throw g.unsupported(next[0], `cannot evaluate the split sizes of the packed projection '${lin.node}'`);
    let off = 0;
    (next[0].output ?? []).forEach((o, i) => {
      add(off * inner, sizes[i] * inner, o, [...pre, next[0]]);
      off += sizes[i];
    });
  } else if (next.length >= 2 && next.every((c) => c.opType === 'Gather' && norm(g.attrInt(c, 'axis') ?? 0) === axis)) {
    for (const c of next) {
      const idx = g.shapes.value(c.input![1]);
      if (!idx || idx.length !== 1 || idx[0] === null)
        throw g.unsupported(c, `cannot evaluate which part of the packed projection '${lin.node}' this Gather takes`);
      const i = idx[0] < 0 ? idx[0] + k : idx[0];
      add(i * inner, inner, c.output![0], [...pre, c]);
    }
  } else {
    return undefined;
  }
  return checkCover(g, lin, parts);
}

/** The packed-projection forms, tried in order (the first that applies splits the projection). */
export const PACKED_PROJECTION_FORMS: readonly PackedProjectionForm[] = [
  { name: 'slices (nn.MultiheadAttention in_proj)', split: splitBySlices },
  { name: 'split of the last axis (GPT-2 c_attn)', split: splitBySplit },
  { name: 'reshape [k, …] + Split/Gather (timm qkv)', split: splitByReshape },
];

/** Ranges of a packed projection, or undefined when its output is not split. */
function splitPacked(g: GraphIndex, lin: LinearRef, views: Record<string, TensorView>): ProjPart[] | undefined {
  const shape = g.shapes.shape(lin.out);
  const rank = shape?.length;
  const lastAxis = (a: number | null | undefined) => a === -1 || (rank !== undefined && a === rank - 1);
  const c: PackedContext = { g, lin, views, width: lin.outDim, shape, cons: g.dataConsumers(lin.out), lastAxis };
  for (const form of PACKED_PROJECTION_FORMS) {
    const parts = form.split(c);
    if (parts) return parts;
  }
  return undefined;
}

/** The parts of a packed projection must cover each output exactly once. */
function checkCover(g: GraphIndex, lin: LinearRef, parts: ProjPart[]): ProjPart[] {
  const seen = new Uint8Array(lin.outDim);
  for (const p of parts) for (let i = p.lin.slice!.offset; i < p.lin.slice!.offset + p.lin.slice!.size; i++) seen[i]++;
  if (seen.some((c) => c !== 1))
    throw g.unsupported(
      g.producer.get(lin.out),
      `the parts taken from the packed projection '${lin.node}' do not cover its ${lin.outDim} outputs exactly once`,
    );
  return parts.sort((a, b) => a.lin.slice!.offset - b.lin.slice!.offset);
}

/** A Mul/Div by one constant (the 1/√d scaling PyTorch applies to Q before QKᵀ). */
function isScalarScale(g: GraphIndex, n: NodeProto, t: string): boolean {
  if (n.opType !== 'Mul' && n.opType !== 'Div') return false;
  const other = n.input![0] === t ? n.input![1] : n.input![0];
  if (n.opType === 'Div' && n.input![0] !== t) return false;
  return g.isConstant(other) && g.constValues(other)?.length === 1;
}

/** Where a tensor ends up after data-movement ops and scalar scaling: the consuming node and the input slot. */
function sinkOf(g: GraphIndex, tensor: string): { node: NodeProto; slot: number; via: NodeProto[] } | undefined {
  let t = tensor;
  const via: NodeProto[] = [];
  for (let guard = 0; guard < 10; guard++) {
    const cons = g.dataConsumers(t);
    if (cons.length !== 1) return undefined;
    const n = cons[0];
    if (SHAPE_OPS.has(n.opType ?? '') || isScalarScale(g, n, t)) {
      via.push(n);
      t = n.output![0];
      continue;
    }
    return { node: n, slot: (n.input ?? []).indexOf(t), via };
  }
  return undefined;
}

export function matchAttention(g: GraphIndex, parts: ProjPart[], blockIndex: number): AttentionRef {
  const first = g.producer.get(parts[0].lin.out) ?? g.model.nodes.find((n) => n.name === parts[0].lin.node);
  if (parts.length !== 3)
    throw g.unsupported(
      first,
      `expected 3 projections (Q, K, V) from the normalised input, found ${parts.length}${parts.some((p) => p.lin.slice) ? ' (counting the parts of packed projections)' : ''}`,
    );
  const sinks = parts.map((p) => ({ p, s: sinkOf(g, p.from) }));
  for (const { p, s } of sinks) {
    if (!s || s.node.opType !== 'MatMul')
      throw g.unsupported(
        s?.node ?? g.producer.get(p.from),
        `projection '${p.lin.node}'${p.lin.slice ? ` (outputs ${p.lin.slice.offset}…${p.lin.slice.offset + p.lin.slice.size - 1})` : ''} does not feed an attention MatMul (after the head split)`,
      );
  }
  const byNode = new Map<string, { p: ProjPart; slot: number; via: NodeProto[] }[]>();
  for (const { p, s } of sinks) {
    const key = s!.node.name ?? '';
    byNode.set(key, [...(byNode.get(key) ?? []), { p, slot: s!.slot, via: [...p.pre, ...s!.via] }]);
  }
  let scores: NodeProto | undefined;
  let q: ProjPart | undefined, k: ProjPart | undefined, v: ProjPart | undefined;
  let qVia: NodeProto[] = [];
  let vVia: NodeProto[] = [];
  for (const [name, entries] of byNode) {
    const node = g.model.nodes.find((n) => n.name === name)!;
    if (entries.length === 2) {
      scores = node;
      q = entries.find((e) => e.slot === 0)?.p;
      k = entries.find((e) => e.slot === 1)?.p;
      qVia = entries.find((e) => e.slot === 0)?.via ?? [];
    } else if (entries.length === 1 && entries[0].slot === 1) {
      v = entries[0].p;
      vVia = entries[0].via;
    }
  }
  if (!scores || !q || !k || !v) throw g.unsupported(first, `block ${blockIndex}: cannot identify Q, K and V from the attention pattern (QKᵀ and ·V MatMuls)`);
  // The context MatMul: V's sink; its left operand must come from the scores through Softmax.
  const context = sinks.find((s) => s.p === v)!.s!.node;
  const ops = new Set<string>();
  let t = context.input![0];
  for (let guard = 0; guard < 12 && t !== scores.output![0]; guard++) {
    const p = g.producer.get(t);
    if (!p || !SCORE_OPS.has(p.opType ?? ''))
      throw g.unsupported(p ?? context, 'attention probabilities must come from the scores through scale/mask/Softmax only');
    ops.add(p.opType ?? '');
    // Follow the operand that comes from the scores (a mask may be added from another input).
    const ins = (p.input ?? []).filter((i) => i && !g.isConstant(i));
    t = ins.find((i) => isDownstreamOf(g, i, scores!.output![0])) ?? ins[0] ?? '';
  }
  if (t !== scores.output![0] || !ops.has('Softmax')) throw g.unsupported(context, 'no Softmax between QKᵀ and ·V');
  const heads = headsFrom(g, qVia, q.lin.outDim);
  const vHeads = headsFrom(g, vVia, v.lin.outDim);
  if (heads !== vHeads) throw g.unsupported(g.producer.get(v.from), `Q is split into ${heads} heads but V into ${vHeads}`);
  if (k.lin.outDim !== q.lin.outDim) throw g.unsupported(g.producer.get(k.from), `Q has ${q.lin.outDim} outputs, K ${k.lin.outDim}`);
  return {
    q: q.lin,
    k: k.lin,
    v: v.lin,
    o: undefined as unknown as LinearRef,
    heads,
    headDim: q.lin.outDim / heads,
    vHeadDim: v.lin.outDim / heads,
    scoresNode: scores.name ?? '',
    contextNode: context.name ?? '',
  };
}

/**
 * Head count from the Reshape that splits a projection into heads: the per-head size is its last dimension
 * ([B, T, H, d], nn.MultiheadAttention's [T, B·H, d], timm's [B, T, 3, H, d]); with d = −1, H before it.
 */
function headsFrom(g: GraphIndex, via: NodeProto[], width: number): number {
  const reshapes = via.filter((n) => n.opType === 'Reshape');
  const reshape = reshapes[reshapes.length - 1];
  if (!reshape) throw g.unsupported(via[0], 'no Reshape splitting the projection into heads');
  const target = g.shapes.value(reshape.input![1]) ?? g.shapeVector(reshape.input![1]);
  const out = g.shapes.shape(reshape.output![0]);
  if (!target || target.length < 3)
    throw g.unsupported(reshape, 'cannot read the head-split shape (expected [batch, tokens, heads, headDim] or [tokens, batch·heads, headDim])');
  let d = out?.[out.length - 1] ?? target[target.length - 1];
  if ((d === -1 || d === null) && target.length >= 4) {
    const h = target[target.length - 2];
    if (h !== null && h > 0 && width % h === 0) d = width / h;
  }
  if (d === null || d <= 0 || width % d !== 0)
    throw g.unsupported(reshape, `head split [${target.map((x) => (x === null ? '?' : x))}] does not match width ${width}`);
  return width / d;
}
