// A cheap compatibility check of models before any fusion work (no ONNX Runtime session, no data): each model's
// graph analysis, and whether the others can be aligned onto the first (the anchor). The extension calls it
// before asking the user anything, so an unsupported graph is reported once, naming the node and the pattern.
import { OtfuseError } from '../errors';
import { loadModel } from '../onnx/model';
import { analyzeModel } from './analyze';
import type { ModelPlan } from './plan';

export interface ModelCheck {
  file: string;
  ok: boolean;
  /** What the analysis found (when ok). */
  structure?: {
    layers: number;
    hidden: number;
    heads: number;
    mlp: number;
    tokens?: number;
    classes: number;
    norm: 'pre' | 'post';
    embedding: string;
    packedQkv: boolean;
    seqFirst: boolean;
  };
  /** Why the model cannot be fused (when not ok): the engine error, with the graph node it concerns. */
  error?: { code: string; message: string; node?: string };
}

export interface CompatibilityReport {
  /** Every model analyses and the others can be aligned onto the first. */
  ok: boolean;
  models: ModelCheck[];
  /** Mismatches between a model and the anchor (the first), one line each, naming the file. */
  problems: string[];
  /** Widths differ: fusion works (the anchor's widths win), vanilla averaging does not. */
  heterogeneous: boolean;
}

function structureOf(p: ModelPlan): NonNullable<ModelCheck['structure']> {
  return {
    layers: p.layers,
    hidden: p.hidden,
    heads: p.heads,
    mlp: p.mlp,
    tokens: p.tokens,
    classes: p.head.classes,
    norm: p.blocks[0].norm,
    embedding: p.embedding.kind,
    packedQkv: !!p.blocks[0].attn.q.slice,
    seqFirst: p.seqFirst.includes(p.blocks[0].input),
  };
}

export function checkCompatibility(files: string[]): CompatibilityReport {
  const models: ModelCheck[] = [];
  const plans: (ModelPlan | undefined)[] = [];
  for (const file of files) {
    try {
      const plan = analyzeModel(loadModel(file));
      plans.push(plan);
      models.push({ file, ok: true, structure: structureOf(plan) });
    } catch (e) {
      if (!(e instanceof OtfuseError)) throw e;
      plans.push(undefined);
      models.push({ file, ok: false, error: { code: e.code, message: e.message, ...(e.node ? { node: e.node } : {}) } });
    }
  }
  const problems: string[] = [];
  let heterogeneous = false;
  const anchor = models[0]?.structure;
  if (files.length < 2) problems.push('fusion needs at least two models');
  if (anchor) {
    for (const m of models.slice(1)) {
      const s = m.structure;
      if (!s) continue;
      const differ = (what: string, x: unknown, y: unknown) => {
        if (x !== y) problems.push(`${m.file}: ${what} ${String(y)}, the anchor ${String(x)}`);
      };
      differ('embedding', anchor.embedding, s.embedding);
      differ('blocks', anchor.layers, s.layers);
      differ('heads', anchor.heads, s.heads);
      differ('LayerNorm placement', `${anchor.norm}-LN`, `${s.norm}-LN`);
      differ('tokens', anchor.tokens, s.tokens);
      differ('classes', anchor.classes, s.classes);
      if (s.hidden !== anchor.hidden || s.mlp !== anchor.mlp) heterogeneous = true;
    }
  }
  return { ok: models.every((m) => m.ok) && problems.length === 0, models, problems, heterogeneous };
}
