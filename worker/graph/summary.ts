// `otfuse inspect --alignment`: the alignment structure derived from the graph, as data and as readable text.
import type { OnnxModel } from '../onnx/model';
import type { AlignmentSummary } from '../types';
import { analyzeModel, type LinearRef, type ModelPlan } from './analyze';

export function analyzeAlignment(model: OnnxModel): AlignmentSummary {
  return summarizePlan(analyzeModel(model));
}

function lin(name: string, kind: string, l: LinearRef, inputFrom?: string, note?: string): AlignmentSummary['groups'][number] {
  return {
    name, kind, width: l.outDim,
    params: [`${l.weight}${l.slice ? `${l.outIn ? ' rows' : ' cols'} ${l.slice.offset}..${l.slice.offset + l.slice.size}` : ''}${l.bias || l.slice ? ` ${l.outIn ? '[out,in]' : '[in,out]'}` : ''}`, ...(l.bias ? [`${l.bias}${l.slice ? `[${l.slice.offset}..${l.slice.offset + l.slice.size}]` : ''}`] : [])],
    inputFrom, note,
  };
}

export function summarizePlan(plan: ModelPlan): AlignmentSummary {
  const groups: AlignmentSummary['groups'] = [];
  const residualPoints: string[] = [];
  const e = plan.embedding;
  if (e.kind === 'tokens') {
    for (const t of e.tables) groups.push({ name: `embed.${t.by}`, kind: 'embedding-table', width: t.dims[1], params: [t.name], note: `${t.dims[0]} rows, Gather by ${t.by}; aligned along the hidden axis with the stream map` });
    groups.push({ name: 'embed.tokens', kind: 'embedding', width: plan.hidden, params: [e.ln?.scale, e.ln?.bias].filter(Boolean) as string[], note: `map from the summed lookups${e.ln ? `; ${e.ln.form} after the sum` : ''}` });
    residualPoints.push(`embed: ${e.tables.length} lookups summed → one stream map`);
  } else {
  if (e.cls) groups.push({ name: 'embed.cls', kind: 'cls-token', width: e.cls.dims[e.cls.dims.length - 1], params: [e.cls.name], note: 'map from its own values' });
  if (e.pos) groups.push({ name: 'embed.pos', kind: 'position', width: e.pos.dims[e.pos.dims.length - 1], params: [e.pos.name], note: `${e.pos.dims[e.pos.dims.length - 2]} tokens; map from its own values` });
  groups.push({
    name: 'embed.patch', kind: 'patch-conv', width: e.patch.channels, params: [e.patch.weight, ...(e.patch.bias ? [e.patch.bias] : [])],
    note: `Conv ${e.patch.kernel.join('×')} as a linear layer on flattened patches${e.patch.grid.length ? `, grid ${e.patch.grid.join('×')}` : ''}`,
  });
  residualPoints.push(`embed: patch map + position map (residual policy) → stream`);
  }
  let stream = 'embed';
  for (const b of plan.blocks) {
    const p = `blocks.${b.index}`;
    const a = b.attn;
    if (b.ln1 && b.norm === 'pre') groups.push({ name: `${p}.ln1`, kind: 'layernorm', width: plan.hidden, params: [b.ln1.scale, b.ln1.bias].filter(Boolean) as string[], inputFrom: stream, note: `${b.ln1.form}; map passes through` });
    groups.push(lin(`${p}.attn.q`, 'attn-q', a.q, stream, `${a.heads} heads × ${a.headDim}; left operand of QKᵀ`));
    groups.push(lin(`${p}.attn.k`, 'attn-k', a.k, stream, 'right operand of QKᵀ'));
    groups.push(lin(`${p}.attn.v`, 'attn-v', a.v, stream, `${a.heads} heads × ${a.vHeadDim}; right operand of softmax·V`));
    groups.push(lin(`${p}.attn.o`, 'attn-o', a.o, `${p}.attn.v`, 'input side takes the V map'));
    residualPoints.push(`${p}.attn: ${stream} (skip) + ${p}.attn.o (branch) at ${b.attnAddNode}`);
    stream = `${p}.resid1`;
    if (b.norm === 'post' && b.ln1) groups.push({ name: `${p}.ln1`, kind: 'layernorm', width: plan.hidden, params: [b.ln1.scale, b.ln1.bias].filter(Boolean) as string[], inputFrom: stream, note: `${b.ln1.form} after the residual Add` });
    if (b.ln2 && b.norm === 'pre') groups.push({ name: `${p}.ln2`, kind: 'layernorm', width: plan.hidden, params: [b.ln2.scale, b.ln2.bias].filter(Boolean) as string[], inputFrom: stream, note: `${b.ln2.form}; map passes through` });
    groups.push(lin(`${p}.mlp.fc1`, 'mlp-fc1', b.fc1, stream, `activation: ${b.activation.join('→')}`));
    groups.push(lin(`${p}.mlp.fc2`, 'mlp-fc2', b.fc2, `${p}.mlp.fc1`));
    residualPoints.push(`${p}.mlp: ${stream} (skip) + ${p}.mlp.fc2 (branch) at ${b.mlpAddNode}`);
    stream = `${p}.resid2`;
    if (b.norm === 'post' && b.ln2) groups.push({ name: `${p}.ln2`, kind: 'layernorm', width: plan.hidden, params: [b.ln2.scale, b.ln2.bias].filter(Boolean) as string[], inputFrom: stream, note: `${b.ln2.form} after the residual Add` });
  }
  const h = plan.head;
  if (h.finalNorm) groups.push({ name: 'head.ln', kind: 'layernorm', width: plan.hidden, params: [h.finalNorm.scale, h.finalNorm.bias].filter(Boolean) as string[], inputFrom: stream, note: h.finalNorm.form });
  if (h.pooler) groups.push(lin('head.pooler', 'pooler', h.pooler, stream));
  groups.push(lin('head.classifier', 'classifier', h.classifier, h.pooler ? 'head.pooler' : stream, `${h.classes} classes; input side only (outputs never permuted)`));

  const lines: string[] = [];
  lines.push(`${plan.file}`);
  lines.push(`transformer: ${plan.layers} blocks (${plan.blocks[0].norm}-LN), hidden ${plan.hidden}, ${plan.heads} heads × ${plan.headDim}, MLP ${plan.mlp}${plan.tokens ? `, ${plan.tokens} tokens` : ''}, ${h.classes} classes`);
  lines.push('');
  lines.push('aligned groups (name · kind · width · input map from · params):');
  for (const gr of groups) lines.push(`  ${gr.name.padEnd(22)} ${gr.kind.padEnd(12)} ${String(gr.width).padStart(5)}  ${(gr.inputFrom ?? '—').padEnd(16)} ${gr.params.join(', ')}${gr.note ? `  (${gr.note})` : ''}`);
  lines.push('');
  lines.push('residual policy points:');
  for (const r of residualPoints) lines.push(`  ${r}`);
  return { hiddenSize: plan.hidden, layers: plan.layers, heads: plan.heads, headDim: plan.headDim, groups, residualPoints, text: lines.join('\n') };
}
