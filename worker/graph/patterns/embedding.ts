// The embedding at the start of the residual stream: a patch Conv (+ CLS Concat, + position Add) for vision
// transformers, summed Gather lookups (+ LayerNorm) for text transformers.
import { OtfuseError } from '../../errors';
import type { NodeProto } from '../../onnx/model';
import { GraphIndex, numel } from '../ir';
import type { EmbeddingRef, PatchEmbedding, PatchEmbeddingRef, TableRef, TokenEmbedding } from '../plan';
import { followShapes, matchNorm, paramThroughBroadcast } from './common';

/** Which graph input an index tensor comes from (through Cast/Identity/Reshape), or 'position'. */
function indexSource(g: GraphIndex, t: string): string {
  let cur = t;
  for (let guard = 0; guard < 6; guard++) {
    if (g.inputs.includes(cur)) return cur;
    const p = g.producer.get(cur);
    if (!p || !['Cast', 'Identity', 'Reshape', 'Unsqueeze', 'Squeeze'].includes(p.opType ?? '')) return 'position';
    cur = p.input![0];
  }
  return 'position';
}

function matchTokenEmbedding(g: GraphIndex, first: NodeProto, placed: Set<string>): TokenEmbedding {
  const tables: TableRef[] = [];
  const addTable = (n: NodeProto) => {
    const name = g.paramName(n.input![0])!;
    if ((g.attrInt(n, 'axis') ?? 0) !== 0) throw g.unsupported(n, 'embedding lookups must Gather rows (axis 0)');
    const dims = g.paramDims(name);
    if (dims.length !== 2) throw g.unsupported(n, `embedding table '${name}' is not 2-D`);
    tables.push({ name, dims, node: n.name ?? '', by: indexSource(g, n.input![1]) });
    placed.add(name);
  };
  addTable(first);
  let t = first.output![0];
  for (let guard = 0; guard < 8; guard++) {
    const cons = g.dataConsumers(t);
    if (cons.length !== 1 || cons[0].opType !== 'Add') break;
    const add = cons[0];
    const other = add.input![0] === t ? add.input![1] : add.input![0];
    const p = g.producer.get(other);
    if (p?.opType === 'Gather' && g.paramName(p.input![0])) addTable(p);
    else {
      const direct = g.paramName(other);
      if (!direct) throw g.unsupported(add, 'the embedding sum adds something that is not an embedding lookup');
      // A learned additive table without Gather (absolute positions added whole).
      tables.push({ name: direct, dims: g.paramDims(direct), node: add.name ?? '', by: 'position' });
      placed.add(direct);
    }
    t = add.output![0];
  }
  const hidden = tables[0].dims[1];
  for (const tb of tables) {
    if (tb.dims[tb.dims.length - 1] !== hidden)
      throw g.unsupported(undefined, `embedding table '${tb.name}' [${tb.dims}] does not end in the hidden width ${hidden}`);
  }
  const byKeys = tables.map((x) => x.by);
  if (new Set(byKeys).size !== byKeys.length) throw g.unsupported(undefined, `two embedding tables are indexed the same way (${byKeys.join(', ')})`);
  const ln = matchNorm(g, t, placed);
  const pos = tables.find((x) => x.by === 'position');
  return { kind: 'tokens', tables, sum: t, ln, out: ln ? ln.out : t, tokens: pos ? pos.dims[pos.dims.length - 2] : undefined };
}

/** One embedding form: its ref when the graph's inputs feed it, else undefined. */
export interface EmbeddingForm {
  name: string;
  match: (g: GraphIndex, input: string, placed: Set<string>) => EmbeddingRef | undefined;
}

/** The embedding forms, tried in order (the first that applies is the model's embedding). */
export const EMBEDDING_FORMS: readonly EmbeddingForm[] = [
  {
    name: 'patch-embedding Conv (vision)',
    match: (g, input, placed) => {
      const conv = g.dataConsumers(input).find((n) => n.opType === 'Conv');
      return conv && matchPatchEmbedding(g, input, conv, placed);
    },
  },
  {
    name: 'token-embedding Gather (text)',
    match: (g, _input, placed) => {
      const lookup = g.inputs.map((i) => g.dataConsumers(i).find((c) => c.opType === 'Gather' && c.input![1] === i && g.paramName(c.input![0]))).find(Boolean);
      return lookup && matchTokenEmbedding(g, lookup, placed);
    },
  },
];

export function matchEmbedding(g: GraphIndex, placed: Set<string>): EmbeddingRef {
  const floatInputs = g.inputs;
  if (floatInputs.length === 0) throw new OtfuseError('BAD_MODEL', 'the graph has no inputs', { file: g.file });
  const input = floatInputs[0];
  for (const form of EMBEDDING_FORMS) {
    const ref = form.match(g, input, placed);
    if (ref) return ref;
  }
  const n = g.dataConsumers(input)[0];
  throw new OtfuseError(
    'BAD_MODEL',
    `not a transformer: the input '${input}' feeds ${n ? `${n.opType} '${n.name}'` : 'nothing'}, not a patch-embedding Conv or token-embedding Gather`,
    { file: g.file, node: n?.name ?? undefined },
  );
}

function matchPatchEmbedding(g: GraphIndex, input: string, conv: NodeProto, placed: Set<string>): EmbeddingRef {
  const weight = g.paramName(conv.input![1]);
  if (!weight) throw g.unsupported(conv, 'patch-embedding weight is not an initializer');
  const wd = g.paramDims(weight);
  const kernel = g.attrInts(conv, 'kernel_shape') ?? wd.slice(2);
  const strides = g.attrInts(conv, 'strides') ?? kernel.map(() => 1);
  const pads = g.attrInts(conv, 'pads') ?? [];
  const group = g.attrInt(conv, 'group') ?? 1;
  if (wd.length !== 4 || strides.some((s, i) => s !== kernel[i]) || pads.some((p) => p !== 0) || group !== 1) {
    throw g.unsupported(conv, `patch embedding must be a Conv with stride = kernel, no padding, one group (kernel [${kernel}], strides [${strides}])`);
  }
  const bias = conv.input![2] ? g.paramName(conv.input![2]) : undefined;
  placed.add(weight);
  if (bias) placed.add(bias);
  const channels = wd[0];
  const inShape = (g.model.graph.input ?? []).find((i) => i.name === input)?.type?.tensorType?.shape?.dim ?? [];
  const spatial = inShape.slice(2).map((d) => Number(d.dimValue ?? 0));
  const grid = spatial.length === 2 && spatial.every((s) => s > 0) ? spatial.map((s, i) => Math.floor(s / kernel[i])) : [];
  const patch: PatchEmbeddingRef = { node: conv.name ?? '', weight, bias, out: conv.output![0], channels, kernel: wd.slice(1), grid };

  // Follow the patch tokens through flatten/transpose to the CLS Concat and the position Add.
  let t = followShapes(g, conv.output![0]);
  let cls: PatchEmbedding['cls'];
  let pos: PatchEmbedding['pos'];
  for (let guard = 0; guard < 4; guard++) {
    const cons = g.dataConsumers(t);
    if (cons.length !== 1) break;
    const n = cons[0];
    if (n.opType === 'Concat' && !cls) {
      const others = (n.input ?? []).filter((i) => i !== t);
      const p = others.length === 1 ? paramThroughBroadcast(g, others[0]) : undefined;
      if (!p) throw g.unsupported(n, 'Concat on the token axis must join the patch tokens with one learned (CLS) token');
      cls = { name: p, dims: g.paramDims(p) };
      placed.add(p);
      t = n.output![0];
      continue;
    }
    if (n.opType === 'Add' && !pos) {
      const other = n.input![0] === t ? n.input![1] : n.input![0];
      const p = g.paramName(other);
      if (!p) break;
      const dims = g.paramDims(p);
      if (dims[dims.length - 1] !== channels) throw g.unsupported(n, `position embedding [${dims}] does not end in the hidden width ${channels}`);
      pos = { name: p, dims, node: n.name ?? '' };
      placed.add(p);
      t = n.output![0];
      continue;
    }
    break;
  }
  const tokens = pos ? pos.dims[pos.dims.length - 2] : grid.length ? numel(grid) + (cls ? 1 : 0) : undefined;
  return { kind: 'patch', patch, cls, pos, out: t, tokens };
}
