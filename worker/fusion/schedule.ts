// The alignment schedule: a ModelPlan compiled once into the ordered steps every consumer reads — the alignment
// (align.ts runs one handler per step), parameter roles (run.ts planParams: averaging, vanilla), the map count
// of the progress bar, the refit's layer levels and `otfuse inspect --alignment` (fusion/summary.ts).
// Steps are positions in a plan: their accessors pick the same layer from any model's plan, so the anchor's
// schedule pairs the other model's layers with the anchor's. Maps flow between steps through named slots.
import type { AttentionRef, EmbeddingRef, LinearRef, ModelPlan, NormRef } from '../graph/analyze';

/** Where a step reads / leaves a transport map: the residual stream, the saved skip path, a branch, V, fc1, the head. */
export type Slot = 'stream' | 'skip' | 'branch' | 'v' | 'fc1' | 'head' | 'embed';

/** Start of an activation stage (0 = embedding, 1…L = blocks, L+1 = head); `block` for the block checks. */
export interface StageStep {
  kind: 'stage';
  name: string;
  stage: number;
  block?: number;
}
export interface EmbeddingStep {
  kind: 'embedding';
  name: 'embed';
  out: 'stream';
  ref(p: ModelPlan): EmbeddingRef;
}
/** Keeps a copy of a slot's map (the skip path of the next residual Add). */
export interface SaveStep {
  kind: 'save';
  name: string;
  from: Slot;
  to: Slot;
}
/** LayerNorm: scale and bias take the slot's map; the map passes through. */
export interface NormStep {
  kind: 'norm';
  name: string;
  slot: Slot;
  note: string;
  ref(p: ModelPlan): NormRef | undefined;
}
/** Q, K, V (one or more OT problems by Q/K mode): input side from `in`, V's map into `out`. */
export interface AttentionStep {
  kind: 'attention';
  name: string;
  block: number;
  in: Slot;
  out: Slot;
  ref(p: ModelPlan): AttentionRef;
}
/** A linear layer: input side from `in`, one OT map for its outputs into `out`. */
export interface LinearStep {
  kind: 'linear';
  name: string;
  mapKind: string;
  in: Slot;
  out: Slot;
  note?: string;
  ref(p: ModelPlan): LinearRef | undefined;
  /** No OT: the output side takes this slot's map (a masked-LM transform feeding a decoder tied to the embedding). */
  fixedOut?: Slot;
}
/**
 * The classifier: input side only; its outputs (the classes) are never permuted. `tied`: its weight is the
 * word-embedding table, already aligned by the embedding with the map `in` holds; only the bias is written.
 */
export interface ClassifierStep {
  kind: 'classifier';
  name: string;
  in: Slot;
  tied?: boolean;
  ref(p: ModelPlan): LinearRef;
}
/** A residual Add: the map after it combines the skip and branch maps by the residual policy. */
export interface ResidualStep {
  kind: 'residual';
  name: string;
  /** e.g. 'blocks.0.attn' (for the inspect text). */
  point: string;
  skip: Slot;
  branch: Slot;
  out: Slot;
  /** Tensors whose mean |activation| weights the paths (weighted policies), in the anchor. */
  skipTensor(p: ModelPlan): string;
  branchTensor(p: ModelPlan): string;
  addNode(p: ModelPlan): string;
}

export type Step = StageStep | EmbeddingStep | SaveStep | NormStep | AttentionStep | LinearStep | ClassifierStep | ResidualStep;

/** The plan's steps in alignment order (the anchor's structure: pre- or post-LN, pooler or not). */
export function compileSchedule(plan: ModelPlan): Step[] {
  const steps: Step[] = [];
  steps.push({ kind: 'stage', name: 'stage.embed', stage: 0 });
  steps.push({ kind: 'embedding', name: 'embed', out: 'stream', ref: (p) => p.embedding });
  const mlm = plan.head.kind === 'mlm';
  if (mlm) steps.push({ kind: 'save', name: 'embed.tied', from: 'stream', to: 'embed' });
  plan.blocks.forEach((b, i) => {
    const p = `blocks.${i}`;
    const post = b.norm === 'post';
    steps.push({ kind: 'stage', name: `stage.${p}`, stage: i + 1, block: i });
    steps.push({ kind: 'save', name: `${p}.skip1`, from: 'stream', to: 'skip' });
    if (!post) steps.push({ kind: 'norm', name: `${p}.ln1`, slot: 'stream', note: 'map passes through', ref: (m) => m.blocks[i].ln1 });
    steps.push({ kind: 'attention', name: `${p}.attn`, block: i, in: 'stream', out: 'v', ref: (m) => m.blocks[i].attn });
    steps.push({
      kind: 'linear',
      name: `${p}.attn.o`,
      mapKind: 'attn-o',
      in: 'v',
      out: 'branch',
      note: 'input side takes the V map',
      ref: (m) => m.blocks[i].attn.o,
    });
    steps.push({
      kind: 'residual',
      name: `${p}.resid1`,
      point: `${p}.attn`,
      skip: 'skip',
      branch: 'branch',
      out: 'stream',
      skipTensor: (m) => m.blocks[i].input,
      branchTensor: (m) => m.blocks[i].attn.o.out,
      addNode: (m) => m.blocks[i].attnAddNode,
    });
    if (post) steps.push({ kind: 'norm', name: `${p}.ln1`, slot: 'stream', note: 'after the residual Add', ref: (m) => m.blocks[i].ln1 });
    else steps.push({ kind: 'norm', name: `${p}.ln2`, slot: 'stream', note: 'map passes through', ref: (m) => m.blocks[i].ln2 });
    steps.push({ kind: 'save', name: `${p}.skip2`, from: 'stream', to: 'skip' });
    steps.push({
      kind: 'linear',
      name: `${p}.mlp.fc1`,
      mapKind: 'mlp-fc1',
      in: 'stream',
      out: 'fc1',
      note: `activation: ${b.activation.join('→')}`,
      ref: (m) => m.blocks[i].fc1,
    });
    steps.push({ kind: 'linear', name: `${p}.mlp.fc2`, mapKind: 'mlp-fc2', in: 'fc1', out: 'branch', ref: (m) => m.blocks[i].fc2 });
    steps.push({
      kind: 'residual',
      name: `${p}.resid2`,
      point: `${p}.mlp`,
      skip: 'skip',
      branch: 'branch',
      out: 'stream',
      skipTensor: (m) => m.blocks[i].attnAdd,
      branchTensor: (m) => m.blocks[i].fc2.out,
      addNode: (m) => m.blocks[i].mlpAddNode,
    });
    if (post) steps.push({ kind: 'norm', name: `${p}.ln2`, slot: 'stream', note: 'after the residual Add', ref: (m) => m.blocks[i].ln2 });
  });
  steps.push({ kind: 'stage', name: 'stage.head', stage: plan.blocks.length + 1 });
  steps.push({ kind: 'norm', name: 'head.ln', slot: 'stream', note: '', ref: (m) => m.head.finalNorm });
  if (mlm) {
    // Masked-LM head: the decoder is the embedding table, so the transform's outputs take the embedding map.
    steps.push({
      kind: 'linear',
      name: 'head.transform',
      mapKind: 'mlm-transform',
      in: 'stream',
      out: 'head',
      fixedOut: 'embed',
      note: 'outputs take the embedding map (tied decoder)',
      ref: (m) => m.head.mlm?.transform,
    });
    steps.push({ kind: 'norm', name: 'head.transform.ln', slot: 'head', note: 'map passes through', ref: (m) => m.head.mlm?.norm });
    steps.push({ kind: 'classifier', name: 'head.decoder', in: 'head', tied: true, ref: (m) => m.head.classifier });
    return steps;
  }
  if (plan.head.pooler) steps.push({ kind: 'linear', name: 'head.pooler', mapKind: 'pooler', in: 'stream', out: 'head', ref: (m) => m.head.pooler });
  steps.push({ kind: 'classifier', name: 'head.classifier', in: plan.head.pooler ? 'head' : 'stream', ref: (m) => m.head.classifier });
  return steps;
}

/** How many OT maps one model's alignment solves (the total of the per-layer progress events). */
export function solvedMapCount(steps: Step[], plan: ModelPlan, recipe: { headAware: boolean; qk: string }): number {
  let n = 0;
  for (const s of steps) {
    if (s.kind === 'embedding') {
      const e = s.ref(plan);
      n += e.kind === 'patch' ? 1 + (e.cls ? 1 : 0) + (e.pos ? 1 : 0) : 1;
    } else if (s.kind === 'attention')
      n += recipe.headAware ? 3 : recipe.qk === 'separate' ? 3 : 2; // heads, qk, v | q, k, v | qk, v
    else if (s.kind === 'linear' && !s.fixedOut) n += 1;
  }
  return n;
}

/** A linear parameter's role: weight or bias of a (possibly sliced) layer. */
export interface LinearParam {
  role: string;
  name: string;
  linear: LinearRef;
  part: 'weight' | 'bias';
}
/** Any other placed parameter (embeddings, LayerNorm vectors), read and written whole. */
export interface PlainParam {
  role: string;
  name: string;
  linear?: undefined;
  part?: undefined;
}
export type ParamRole = LinearParam | PlainParam;

/** Every parameter the schedule places, by role (the same role names in every model's schedule). */
/** A plan's parameters with their roles (the schedule's, compiled here). */
export function planParams(plan: ModelPlan): ParamRole[] {
  return scheduleParams(compileSchedule(plan), plan);
}

export function scheduleParams(steps: Step[], plan: ModelPlan): ParamRole[] {
  const out: ParamRole[] = [];
  const add = (role: string, name?: string) => {
    if (name) out.push({ role, name });
  };
  const lin = (role: string, l?: LinearRef) => {
    if (!l) return;
    out.push({ role: `${role}.w`, name: l.weight, linear: l, part: 'weight' });
    if (l.bias) out.push({ role: `${role}.b`, name: l.bias, linear: l, part: 'bias' });
  };
  for (const s of steps) {
    switch (s.kind) {
      case 'embedding': {
        const e = s.ref(plan);
        if (e.kind === 'patch') {
          add('embed.cls', e.cls?.name);
          add('embed.pos', e.pos?.name);
          add('embed.patch.w', e.patch.weight);
          add('embed.patch.b', e.patch.bias);
        } else {
          for (const t of e.tables) add(`embed.table.${t.by}`, t.name);
          add('embed.ln.s', e.ln?.scale);
          add('embed.ln.b', e.ln?.bias);
        }
        break;
      }
      case 'norm': {
        const n = s.ref(plan);
        add(`${s.name}.s`, n?.scale);
        add(`${s.name}.b`, n?.bias);
        break;
      }
      case 'attention': {
        const a = s.ref(plan);
        lin(`${s.name}.q`, a.q);
        lin(`${s.name}.k`, a.k);
        lin(`${s.name}.v`, a.v);
        break;
      }
      case 'linear':
        lin(s.name, s.ref(plan));
        break;
      case 'classifier': {
        const l = s.ref(plan);
        // A tied decoder's weight is the embedding table (role embed.table.*); only its bias is a role here.
        if (s.tied) {
          if (l.bias) out.push({ role: `${s.name}.b`, name: l.bias, linear: l, part: 'bias' });
        } else lin(s.name, l);
        break;
      }
    }
  }
  return out;
}

/** The linear layers (attention Q/K/V, O, fc1, fc2, pooler, classifier) in levels whose inputs do not depend on each other. */
export function linearLevels(steps: Step[]): { name: string; ref(p: ModelPlan): LinearRef | undefined }[][] {
  const levels: { name: string; ref(p: ModelPlan): LinearRef | undefined }[][] = [];
  for (const s of steps) {
    if (s.kind === 'attention') levels.push((['q', 'k', 'v'] as const).map((x) => ({ name: `${s.name}.${x}`, ref: (p: ModelPlan) => s.ref(p)[x] })));
    else if (s.kind === 'linear' || (s.kind === 'classifier' && !s.tied)) levels.push([{ name: s.name, ref: s.ref }]);
  }
  return levels;
}
