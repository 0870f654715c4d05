// `otfuse inspect --alignment`: the alignment structure derived from the graph, as data and as readable text.
import type { OnnxModel } from '../onnx/model';
import type { AlignmentSummary } from '../types';
import { analyzeModel, type LinearRef, type ModelPlan } from '../graph/analyze';
import { compileSchedule, type Slot } from './schedule';

export function analyzeAlignment(model: OnnxModel): AlignmentSummary {
  return summarizePlan(analyzeModel(model));
}

function lin(name: string, kind: string, l: LinearRef, inputFrom?: string, note?: string): AlignmentSummary['groups'][number] {
  return {
    name,
    kind,
    width: l.outDim,
    params: [
      `${l.weight}${l.slice ? `${l.outIn ? ' rows' : ' cols'} ${l.slice.offset}..${l.slice.offset + l.slice.size}` : ''}${l.bias || l.slice ? ` ${l.outIn ? '[out,in]' : '[in,out]'}` : ''}`,
      ...(l.bias ? [`${l.bias}${l.slice ? `[${l.slice.offset}..${l.slice.offset + l.slice.size}]` : ''}`] : []),
    ],
    inputFrom,
    note,
  };
}

export function summarizePlan(plan: ModelPlan): AlignmentSummary {
  const groups: AlignmentSummary['groups'] = [];
  const residualPoints: string[] = [];
  // Which step last wrote each map slot (the "input map from" column).
  const source = new Map<Slot, string>();
  const steps = compileSchedule(plan);
  for (const step of steps) {
    switch (step.kind) {
      case 'embedding': {
        const e = step.ref(plan);
        if (e.kind === 'tokens') {
          for (const t of e.tables)
            groups.push({
              name: `embed.${t.by}`,
              kind: 'embedding-table',
              width: t.dims[1],
              params: [t.name],
              note: `${t.dims[0]} rows, Gather by ${t.by}; aligned along the hidden axis with the stream map`,
            });
          groups.push({
            name: 'embed.tokens',
            kind: 'embedding',
            width: plan.hidden,
            params: [e.ln?.scale, e.ln?.bias].filter(Boolean) as string[],
            note: `map from the summed lookups${e.ln ? `; ${e.ln.form} after the sum` : ''}`,
          });
          residualPoints.push(`embed: ${e.tables.length} lookups summed → one stream map`);
        } else {
          if (e.cls)
            groups.push({
              name: 'embed.cls',
              kind: 'cls-token',
              width: e.cls.dims[e.cls.dims.length - 1],
              params: [e.cls.name],
              note: 'map from its own values',
            });
          if (e.pos)
            groups.push({
              name: 'embed.pos',
              kind: 'position',
              width: e.pos.dims[e.pos.dims.length - 1],
              params: [e.pos.name],
              note: `${e.pos.dims[e.pos.dims.length - 2]} tokens; map from its own values`,
            });
          groups.push({
            name: 'embed.patch',
            kind: 'patch-conv',
            width: e.patch.channels,
            params: [e.patch.weight, ...(e.patch.bias ? [e.patch.bias] : [])],
            note: `Conv ${e.patch.kernel.join('×')} as a linear layer on flattened patches${e.patch.grid.length ? `, grid ${e.patch.grid.join('×')}` : ''}`,
          });
          residualPoints.push(`embed: patch map + position map (residual policy) → stream`);
        }
        source.set(step.out, 'embed');
        break;
      }
      case 'save':
        source.set(step.to, source.get(step.from) ?? '—');
        break;
      case 'norm': {
        const n = step.ref(plan);
        if (n)
          groups.push({
            name: step.name,
            kind: 'layernorm',
            width: plan.hidden,
            params: [n.scale, n.bias].filter(Boolean) as string[],
            inputFrom: source.get(step.slot),
            note: step.note ? `${n.form}${step.note.startsWith('after') ? ' ' : '; '}${step.note}` : n.form,
          });
        break;
      }
      case 'attention': {
        const a = step.ref(plan),
          from = source.get(step.in);
        groups.push(lin(`${step.name}.q`, 'attn-q', a.q, from, `${a.heads} heads × ${a.headDim}; left operand of QKᵀ`));
        groups.push(lin(`${step.name}.k`, 'attn-k', a.k, from, 'right operand of QKᵀ'));
        groups.push(lin(`${step.name}.v`, 'attn-v', a.v, from, `${a.heads} heads × ${a.vHeadDim}; right operand of softmax·V`));
        source.set(step.out, `${step.name}.v`);
        break;
      }
      case 'linear': {
        const l = step.ref(plan);
        if (!l) break;
        groups.push(lin(step.name, step.mapKind, l, source.get(step.in), step.note));
        source.set(step.out, step.name);
        break;
      }
      case 'residual':
        residualPoints.push(`${step.point}: ${source.get(step.skip)} (skip) + ${source.get(step.branch)} (branch) at ${step.addNode(plan)}`);
        source.set(step.out, step.name);
        break;
      case 'classifier':
        groups.push(
          lin(
            step.name,
            'classifier',
            step.ref(plan),
            source.get(step.in),
            `${plan.head.classes} classes; input side only (outputs never permuted)${step.tied ? `; weight tied to the word embedding '${plan.head.mlm?.table}' (aligned once, by the embedding)` : ''}`,
          ),
        );
        break;
    }
  }
  const h = plan.head;

  const lines: string[] = [];
  lines.push(`${plan.file}`);
  lines.push(
    `transformer: ${plan.layers} blocks (${plan.blocks[0].norm}-LN), hidden ${plan.hidden}, ${plan.heads} heads × ${plan.headDim}, MLP ${plan.mlp}${plan.tokens ? `, ${plan.tokens} tokens` : ''}, ${h.classes} classes${plan.seqFirst.includes(plan.blocks[0].input) ? ', sequence-first stream [tokens, batch, hidden]' : ''}${Object.keys(plan.views).length || plan.blocks[0].attn.q.slice ? ', packed Q/K/V' : ''}`,
  );
  lines.push('');
  lines.push('aligned groups (name · kind · width · input map from · params):');
  for (const gr of groups)
    lines.push(
      `  ${gr.name.padEnd(22)} ${gr.kind.padEnd(12)} ${String(gr.width).padStart(5)}  ${(gr.inputFrom ?? '—').padEnd(16)} ${gr.params.join(', ')}${gr.note ? `  (${gr.note})` : ''}`,
    );
  lines.push('');
  lines.push('residual policy points:');
  for (const r of residualPoints) lines.push(`  ${r}`);
  return { hiddenSize: plan.hidden, layers: plan.layers, heads: plan.heads, headDim: plan.headDim, groups, residualPoints, text: lines.join('\n') };
}
