// Fusion presets, one registry: the named partial recipes (PRESETS: their values sit under the user's explicit
// fields; recipe.ts checks they are recipe fields and lists their names in the schema) and what Fuse Models offers
// (fuseChoices(): the engine's auto-tune as "Recommended", then the presets that carry an `offer`). The rule for when
// a fusion is auto-tuned (autotunes) is here too, shared by the CLI and the editor. This module imports nothing but
// types, so the extension takes it through worker/client without the engine.
import type { FuseRecipe } from '../types';

export const PRESETS = {
  default: { description: 'the defaults below', values: {} },
  // graldij/transformer-fusion as run for the fixtures: acts, Sinkhorn 0.08, separate Q/K, n·P scaling on both
  // sides, all tokens, per-neuron standardisation, samples one at a time.
  reference: {
    description: "graldij/transformer-fusion's exact behaviour",
    values: {
      alignBy: 'acts',
      solver: 'sinkhorn',
      reg: 0.08,
      qk: 'separate',
      residualPolicy: 'mean',
      outNorm: 'rows',
      batchSize: 1,
      float32Cost: true,
      tokenFilter: 'all',
      tokenBudget: 0,
      standardize: true,
      refit: 'none',
    },
  },
  // Hard alignment: exact OT, heads matched as units with one map shared by Q and K inside each head.
  exact: {
    description: 'EMD with heads matched as units and one Q/K map per head',
    values: { solver: 'emd', qk: 'eq_t_map', headAware: true },
    offer: { id: 'exact', label: 'Exact', detail: 'hard alignment (EMD), heads matched as units — reproduces a permuted copy exactly' },
  },
  // The paper's method as published: OT alignment + plain averaging, no refit.
  paper: { description: "the paper's method: OT alignment and plain averaging, no refit", values: { refit: 'none' } },
  // Weight-based alignment (no activations needed), Sinkhorn 0.06 as the paper uses for weights.
  weights: {
    description: 'weight-based Sinkhorn 0.06, no refit (no calibration data needed)',
    values: { alignBy: 'wts', solver: 'sinkhorn', reg: 0.06, refit: 'none' },
    offer: { id: 'weight-based', label: 'Weight-based', detail: 'no data needed for alignment: cost from the weights themselves' },
  },
} as const;
export type PresetName = keyof typeof PRESETS;

/** Fuse Models' first choice: no preset, the engine's auto-tune (what `otfuse fuse` does without recipe flags). */
const AUTOTUNE_CHOICE = {
  id: 'recommended',
  label: 'Recommended',
  detail: 'auto-tuned: the engine tries recipes within a time budget and keeps the best on held-out calibration data',
} as const;

/** What Fuse Models offers: an id (settings and saved choices use it), its label and detail, and the recipe it
 * starts from (empty for the auto-tune: see autotunes). */
export interface FuseChoice {
  id: FuseChoiceId;
  label: string;
  detail: string;
  recipe: FuseRecipe;
}
export type FuseChoiceId = typeof AUTOTUNE_CHOICE.id | { [K in PresetName]: (typeof PRESETS)[K] extends { offer: { id: infer I } } ? I : never }[PresetName];

export function fuseChoices(): FuseChoice[] {
  const offered = Object.entries(PRESETS).flatMap(([name, p]) => ('offer' in p ? [{ ...p.offer, recipe: { preset: name as PresetName } }] : []));
  return [{ ...AUTOTUNE_CHOICE, recipe: {} }, ...offered];
}

/** Fields that name or shape the run around the fusion, not the fusion recipe: they keep the auto-tune
 * (--merge-layers / --pareto choose the fused model's shape). */
const NOT_RECIPE_CHOICES = new Set(['name', '$schema', 'mergeLayers', 'pareto']);

/** Whether a fusion with this recipe is auto-tuned: no recipe choice set (the CLI adds --autotune / --no-autotune
 * and needs calibration data). */
export function autotunes(recipe: FuseRecipe | undefined): boolean {
  return Object.keys(recipe ?? {}).filter((k) => !NOT_RECIPE_CHOICES.has(k)).length === 0;
}
