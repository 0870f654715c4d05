// Fuse Models' partial-fusion control (issue 28): "merge layers K" (all = full fusion, 0 = the parents' logit
// ensemble) and "measure the curve (Pareto)". Offered from the preset prompt when the engine's recipe registry has
// those fields (read from recipe.schema.json, generated from worker/fusion/recipe.ts, like the recipe form); the
// K range comes from the anchor's depth and the field's bounds.
import * as vscode from 'vscode';
import path from 'node:path';
import type { FuseRecipe, RecipeField } from '../../contracts/protocol';
import { isCausalLmArchitecture } from '../dataFit';
import { recipeFields } from '../panels';
import type { Deps } from './deps';

/** The recipe fields this control sets. */
export type FusedShape = Pick<FuseRecipe, 'mergeLayers' | 'pareto'>;

/** The registry's mergeLayers and pareto fields, or undefined when the engine has no partial fusion. */
export function shapeFields(extensionPath: string): { mergeLayers: RecipeField; pareto: RecipeField } | undefined {
  const fields = recipeFields(extensionPath);
  const mergeLayers = fields.find((f) => f.key === 'mergeLayers');
  const pareto = fields.find((f) => f.key === 'pareto');
  return mergeLayers && pareto ? { mergeLayers, pareto } : undefined;
}

/** The anchor's transformer blocks (graph analysis, no session), or undefined when partial fusion does not apply
 * (no block structure found, or a causal LM: the engine builds partial fusion for encoders only). */
export async function anchorDepth(d: Deps, anchor: string): Promise<number | undefined> {
  try {
    const r = await d.engines.engine.inspect({ model: anchor, alignment: true, noSession: true });
    if (isCausalLmArchitecture(r.summary.metadata?.['otfuse.hf.architecture'])) return undefined;
    const layers = r.alignment?.layers;
    return layers !== undefined && layers >= 1 ? layers : undefined;
  } catch {
    return undefined;
  }
}

/** "partial fusion: K = 2 of 4 blocks shared · curve over every K" */
export function shapeText(shape: FusedShape, layers: number): string {
  const k = shape.mergeLayers ?? layers;
  const what = k === layers ? `all ${layers} blocks fused` : k === 0 ? "K = 0, the parents' logit ensemble" : `K = ${k} of ${layers} blocks shared`;
  return `${what}${shape.pareto ? ' · curve over every K' : ''}`;
}

/** K (and whether to measure every K) for a fusion of models `layers` blocks deep; undefined when dismissed. */
export async function pickFusedShape(
  anchor: string,
  layers: number,
  fields: { mergeLayers: RecipeField; pareto: RecipeField },
): Promise<FusedShape | undefined> {
  const lo = Math.max(0, fields.mergeLayers.minimum ?? 0);
  const hi = Math.min(layers, fields.mergeLayers.maximum ?? layers);
  type Item = vscode.QuickPickItem & { k: number; curveOnly?: boolean };
  const items: Item[] = [];
  for (let k = Math.min(hi, layers - 1); k >= lo; k--)
    items.push({
      k,
      label: `K = ${k}`,
      description: k === 0 ? "nothing shared: the parents' logit ensemble" : `${k} of ${layers} blocks shared`,
      detail:
        k === 0
          ? 'each parent runs whole; the logits are averaged (the largest model)'
          : `embeddings and blocks 1–${k} fused; each parent keeps blocks ${k + 1}–${layers} and its head as a branch, logits averaged`,
    });
  items.unshift({
    k: layers,
    curveOnly: true,
    label: `$(graph-line) K = ${layers}: all blocks fused, and measure the curve`,
    description: 'full fusion (one parent’s size)',
    detail: 'fused.onnx is the plain fusion; every K is built and evaluated for the chart',
  });
  const pick = await vscode.window.showQuickPick(items, {
    title: `Fuse Models: partial fusion of ${path.basename(anchor)} (${layers} blocks) — how many blocks to share (merge layers K)`,
    placeHolder: fields.mergeLayers.description?.split(/(?<=\.) /)[0],
  });
  if (!pick) return undefined;
  if (pick.curveOnly) return { pareto: true };
  const curve = await vscode.window.showQuickPick(
    [
      { label: '$(graph-line) Measure the curve (Pareto)', detail: fields.pareto.description, pareto: true },
      { label: `Only K = ${pick.k}`, detail: 'build and evaluate the chosen model only (faster)', pareto: false },
    ],
    { title: `Fuse Models: K = ${pick.k} — also measure accuracy vs size for every K?` },
  );
  if (!curve) return undefined;
  return { mergeLayers: pick.k, ...(curve.pareto ? { pareto: true } : {}) };
}
