// Fuse Models: models (a single selection explains why two are needed), a compatibility check before any prompt,
// anchor, calibration data, evaluation data (held out, or labelled calibration data), preset or recipe.
import { autotunes } from '../../worker/client';
import { hfModelFolder } from '../hf';
import * as vscode from 'vscode';
import path from 'node:path';
import type { DataArg, FuseRecipe, FuseResult, RunRecord } from '../../worker/types';
import { measuredOn, pct } from '../format';
import type { Deps } from './deps';
import { showError, trusted } from './notify';
import { Pickers, recipeFor, SKIP_EVALUATION, USE_CALIBRATION, type PartialChoice, type PresetId } from './pickers';
import { anchorDepth, pickFusedShape, shapeFields, shapeText } from './partialPick';

/** Options for running Fuse Models without prompts (tests, other extensions, Re-run with edits). */
export interface FuseOptions {
  models?: string[];
  anchor?: string;
  /** Calibration data (activations). */
  data?: DataArg;
  /** Held-out data to evaluate parents, vanilla and the fused model on. Without it (and with `data` given) the
   * numbers are measured on the calibration data and labelled so. */
  evalData?: DataArg;
  skipEval?: boolean;
  preset?: PresetId;
  recipe?: FuseRecipe | string;
  /** Partial fusion: K blocks shared (recipe.mergeLayers), and whether to measure every K (recipe.pareto). */
  mergeLayers?: number;
  pareto?: boolean;
  runsDir?: string;
  evalLimit?: number;
  /** Do not show the result notification. */
  quiet?: boolean;
}

/** Why these models cannot be fused (checked from their graphs, without running them), or undefined. */
export async function incompatibility(d: Deps, models: string[]): Promise<string | undefined> {
  // The engine's analysis-only check (engine.check, from the real-exports work) when this engine has it.
  const engine = d.engines.engine as unknown as { check?: (r: { models: string[] }) => Promise<{ ok: boolean; problems: string[] }> };
  if (typeof engine.check === 'function') {
    const report = await engine.check({ models });
    return report.ok ? undefined : `these models cannot be fused: ${report.problems.join('; ')}`;
  }
  const infos = [];
  for (const m of models) {
    try {
      infos.push({ file: m, r: await d.engines.engine.inspect({ model: m, alignment: true, noSession: true }) });
    } catch (err) {
      return `${path.basename(m)} cannot be fused: ${(err as Error).message.split('\n')[0]}`;
    }
  }
  const [a, ...rest] = infos;
  const classes = (x: typeof a) => x.r.summary.outputs[0]?.shape.at(-1);
  for (const b of rest) {
    const A = a.r.alignment!,
      B = b.r.alignment!;
    const why =
      A.layers !== B.layers
        ? `${A.layers} vs ${B.layers} transformer blocks`
        : A.heads !== B.heads
          ? `${A.heads} vs ${B.heads} attention heads`
          : classes(a) !== classes(b)
            ? `${classes(a)} vs ${classes(b)} output classes`
            : a.r.summary.inputs.map((i) => i.name).join() !== b.r.summary.inputs.map((i) => i.name).join()
              ? `different inputs (${a.r.summary.inputs.map((i) => i.name).join(', ')} vs ${b.r.summary.inputs.map((i) => i.name).join(', ')})`
              : undefined;
    if (why)
      return `${path.basename(a.file)} and ${path.basename(b.file)} cannot be fused: ${why} (fusion needs the same depth, heads, inputs and classes; widths may differ)`;
  }
  return undefined;
}

export function fuseCommands(d: Deps, pickers: Pickers, offerMerge?: (models: string[]) => Promise<'fuse' | 'done'>) {
  async function fuse(uri?: vscode.Uri, uris?: vscode.Uri[], options: FuseOptions = {}): Promise<FuseResult | undefined> {
    if (!trusted('Fusing')) return undefined;
    const selected =
      options.models ??
      (uris && uris.length ? uris : uri ? [uri] : []).map((u) => u.fsPath).filter((p) => p.endsWith('.onnx') || hfModelFolder(p) !== undefined);
    const models = selected.length >= 2 ? selected : await pickers.pickModels(selected);
    if (!models) return undefined;
    const problem = await incompatibility(d, models);
    if (problem) {
      void vscode.window.showErrorMessage(`otfuse: ${problem}.`);
      if (options.quiet) throw Object.assign(new Error(problem), { code: 'MISMATCH' });
      return undefined;
    }
    // Fine-tunes of one base: offer Merge (shared base) instead of alignment (worker/merge, issue 30).
    if (!options.quiet && offerMerge && (await offerMerge(models)) === 'done') return undefined;
    const anchor = options.anchor ?? (await pickers.pickAnchor(models));
    if (!anchor) return undefined;
    // The preset first: a weight-based one needs no calibration data, so it is not asked for.
    let recipe: FuseRecipe | undefined;
    if (options.recipe) recipe = typeof options.recipe === 'string' ? recipeFor(options.recipe) : options.recipe;
    else if (options.preset) recipe = recipeFor(options.preset);
    else recipe = await pickers.pickRecipe(partialChoice(d, anchor));
    if (!recipe) return undefined;
    if (options.mergeLayers !== undefined) recipe = { ...recipe, mergeLayers: options.mergeLayers };
    if (options.pareto !== undefined) recipe = { ...recipe, pareto: options.pareto };
    const needsData = needsCalibration(recipe);
    const data =
      options.data ??
      (needsData
        ? await pickers.pickFile(`Fuse Models: calibration data (activations for the alignment) for ${path.basename(anchor)}`, 'otfuse.data', anchor)
        : undefined);
    if (!data && needsData) return undefined;
    let evalData = options.evalData;
    let skipEval = options.skipEval ?? false;
    if (evalData === undefined && options.data === undefined && !skipEval) {
      const choice = await pickers.pickEvalData(anchor, data === undefined ? '' : typeof data === 'string' ? data : data.path);
      if (choice === undefined) return undefined;
      if (choice === SKIP_EVALUATION) skipEval = true;
      else if (choice !== USE_CALIBRATION) evalData = choice as DataArg;
    }
    const runsDir = options.runsDir ?? d.store.root;
    const ordered = [anchor, ...models.filter((m) => m !== anchor)];
    const title = `Fusing ${ordered.map((m) => path.basename(m)).join(' + ')}`;
    void vscode.commands.executeCommand('otfuse.alignment.focus');
    const again = () => fuse(undefined, undefined, { ...options, models, anchor, data, evalData, skipEval, recipe });
    try {
      const result = await d.jobs.run(
        title,
        (ctx) =>
          d.engines.engine.fuse(
            {
              models: ordered,
              anchor,
              ...(data !== undefined ? { data } : {}),
              ...(evalData !== undefined ? { evalData } : {}),
              skipEval,
              recipe,
              runsDir,
              provider: d.engines.provider(),
              evalLimit: options.evalLimit ?? pickers.evalLimit(),
              // The parents' logit ensemble next to them: the ceiling a single fused model tries to reach.
              baselines: true,
              // "Recommended" (an empty recipe) is the engine's auto-tune, by the CLI's rule.
              ...(autotunes(recipe) ? { autotune: true } : {}),
            },
            ctx,
          ),
        { expectedSeconds: lastFuseSeconds(d, ordered, recipe) },
      );
      d.log.info(`run written to ${result.runDir}: ${result.record.metrics.map((m) => `${m.label} ${pct(m.accuracy)}`).join(', ')}`);
      d.store.notify(result.runDir);
      await d.alignment.showRun(result.runDir);
      if (!options.quiet) notifyFused(result.runDir, result.record);
      return result;
    } catch (err) {
      showError(d, 'fusion', err, again);
      if (options.quiet) throw err;
      return undefined;
    }
  }

  /** Opens the recipe form with a run's recipe; saving it re-runs the fusion with the run's models and data. */
  async function rerunWithEdits(arg?: unknown): Promise<void> {
    const dir = typeof arg === 'string' ? arg : d.alignment.currentRun;
    const record = dir ? d.store.get(dir).record : undefined;
    if (!dir || !record) return;
    d.panels.openRecipeForm({ recipe: record.recipe, run: { dir, record } });
  }

  return { fuse, rerunWithEdits };
}

/** The preset prompt's partial-fusion entry for this anchor (none when the engine's registry has no such fields). */
function partialChoice(d: Deps, anchor: string): PartialChoice | undefined {
  const fields = shapeFields(d.context.extensionPath);
  if (!fields) return undefined;
  return async () => {
    const layers = await anchorDepth(d, anchor);
    if (layers === undefined) {
      void vscode.window.showWarningMessage(
        `otfuse: partial fusion needs an encoder whose transformer blocks otfuse finds; ${path.basename(anchor)} has none (or is a causal LM). Fuse all blocks instead.`,
      );
      return undefined;
    }
    const shape = await pickFusedShape(anchor, layers, fields);
    return shape && { shape, text: shapeText(shape, layers) };
  };
}

/** Whether a recipe aligns on activations (and so needs calibration data): not the weight-based preset, nor a
 * recipe aligning by weights without a refit (a refit fits on activations). */
export function needsCalibration(recipe: FuseRecipe): boolean {
  const r = recipe as { preset?: string; alignBy?: string; refit?: string; autotune?: unknown };
  if (r.autotune || r.alignBy === 'acts') return true;
  if (r.preset === 'weights') return r.refit !== undefined && r.refit !== 'none';
  return r.alignBy === 'wts' ? r.refit !== 'none' : true;
}

/** How long the last finished fusion of the same models with the same recipe took (the overall ETA). */
export function lastFuseSeconds(d: Deps, models: string[], recipe: FuseRecipe): number | undefined {
  const key = JSON.stringify([[...models].sort(), models[0], recipe]);
  const same = d.store
    .list()
    .map((e) => e.record)
    .filter((r): r is RunRecord => !!r && r.status === 'done' && JSON.stringify([[...r.models].sort(), r.anchor, r.recipe]) === key)
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const t = same[0]?.timings;
  // The record's stages without its finetune (a fusion started here does not finetune).
  return t ? (t.total ?? Object.values(t).reduce((s, v) => s + v, 0)) - (t.finetune ?? 0) : undefined;
}

/** " (partial fusion: K = 2 of 3 blocks shared)" for a partial run, else "". */
function partialNote(record: RunRecord): string {
  const p = record.partial;
  return p && p.mergeLayers < p.layers ? ` (partial fusion: K = ${p.mergeLayers} of ${p.layers} blocks shared)` : '';
}

/** "fused: ot 85.10% · vanilla 9.80% · best parent 86.20% on test.npz" with the next steps as buttons. */
export function notifyFused(runDir: string, record: RunRecord): void {
  const acc = (role: 'fused' | 'vanilla') => record.metrics.find((m) => m.role === role)?.accuracy;
  const parents = record.metrics.filter((m) => m.role === 'parent' || m.role === 'anchor');
  const best = parents.reduce<number | undefined>((b, m) => (m.accuracy !== undefined && (b === undefined || m.accuracy > b) ? m.accuracy : b), undefined);
  const text = record.metrics.length
    ? `otfuse: fused ${record.name}${partialNote(record)} — OT ${pct(acc('fused'))}${acc('vanilla') !== undefined ? `, vanilla ${pct(acc('vanilla'))}` : ''}, best parent ${pct(best)} ${measuredOn(record)}.`
    : `otfuse: fused ${record.name} (not evaluated).`;
  void vscode.window.showInformationMessage(text, 'Open Run', 'Finetune', 'Reveal Fused Model').then((c) => {
    if (c === 'Open Run') void vscode.commands.executeCommand('otfuse.openRun', runDir);
    else if (c === 'Finetune') void vscode.commands.executeCommand('otfuse.quickFinetune', runDir);
    else if (c) void vscode.commands.executeCommand('otfuse.revealFusedModel', runDir);
  });
}
