// The prompts: models, anchor, data (ranked and filtered by the model's inputs, with N and shapes), evaluation
// data (held-out first; calibration data only as a labelled choice), preset or recipe.
import { fuseChoices, readRegularFile, type FuseChoice, type FuseChoiceId } from '../../worker/client';
import * as vscode from 'vscode';
import fs from 'node:fs';
import path from 'node:path';
import type { DataArg, DataDescription, FuseRecipe, ModelSummary } from '../../worker/types';
import { fitOf, isCausalLmArchitecture, looksTraining, rankData, type DataFit } from '../dataFit';
import { findHfFolders, hfModelFolder } from '../hf';
import type { Deps } from './deps';

// The presets and the "Recommended" choice (the engine's auto-tune) come from the engine's preset registry
// (worker/fusion/presets.ts, through worker/client).
export type PresetId = FuseChoiceId;
export const PRESETS = Object.fromEntries(fuseChoices().map((c) => [c.id, c])) as Record<PresetId, FuseChoice>;

export const EXCLUDE = '**/{node_modules,.git,.otfuse,.e2e,dist,dist-test,out}/**';

/** The preset prompt's partial-fusion entry: asks for K (and the curve); the shape and its words, or undefined. */
export type PartialChoice = () => Promise<{ shape: FuseRecipe; text: string } | undefined>;
const PARTIAL_ID = 'partial-fusion';

/** Evaluation choice that is not a file. */
export const USE_CALIBRATION = Symbol('use calibration data');
export const SKIP_EVALUATION = Symbol('skip evaluation');

export function resolveWs(p: string): string {
  if (path.isAbsolute(p)) return p;
  const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  return ws ? path.join(ws, p) : p;
}

/** A .json data spec has a string `path` (and no `name`/`version` like package.json). */
export function isDatasetSpec(file: string): boolean {
  if (/(^|[\\/])(package|tsconfig|package-lock|run)\.json$|\.otfuse\.json$/.test(file)) return false;
  try {
    // A regular file of at most 64 KiB (a FIFO or a device named *.json in the workspace must not block the host).
    const j = JSON.parse(Buffer.from(readRegularFile(file, 'BAD_DATA', 'dataset spec', 64 * 1024)).toString('utf8'));
    return j && typeof j === 'object' && typeof j.path === 'string';
  } catch {
    return false;
  }
}

export class Pickers {
  private readonly described = new Map<string, { mtime: number; d: DataDescription }>();
  private readonly inputs = new Map<string, { mtime: number; inputs: ModelSummary['inputs']; causalLm: boolean }>();

  constructor(private readonly d: Deps) {}

  private get state() {
    return this.d.context.workspaceState;
  }

  evalLimit(): number | undefined {
    const n = vscode.workspace.getConfiguration('otfuse').get<number>('evalLimit', 0);
    return n > 0 ? n : undefined;
  }

  async pickModels(selected: string[], title = 'Fuse Models: choose two or more models'): Promise<string[] | undefined> {
    const found = await vscode.workspace.findFiles('**/*.onnx', EXCLUDE, 200);
    // Hugging Face folders are models too (named by the folder, not "model.safetensors").
    const folders = await findHfFolders();
    const items: (vscode.QuickPickItem & { file?: string })[] = [
      ...found.map((u) => ({
        label: path.basename(u.fsPath),
        description: vscode.workspace.asRelativePath(u),
        file: u.fsPath,
        picked: selected.includes(u.fsPath),
      })),
      ...folders.map((f) => ({
        label: `$(folder) ${path.basename(f)}`,
        description: `${vscode.workspace.asRelativePath(f)} · Hugging Face folder`,
        file: f,
        picked: selected.includes(f),
      })),
    ];
    items.push({ label: '$(folder-opened) Browse…', alwaysShow: true });
    const single = selected.length === 1;
    const picked = await vscode.window.showQuickPick(items, {
      canPickMany: true,
      title: single
        ? `Fuse Models: ${path.basename(selected[0])} needs at least one partner — fusion averages two or more models of the same architecture after aligning their neurons`
        : title,
      placeHolder: single
        ? 'Tick one or more other checkpoints of the same architecture (same depth, heads and classes)'
        : 'The models to fuse (.onnx files or Hugging Face folders)',
    });
    if (!picked) return undefined;
    let files = picked.filter((p) => p.file).map((p) => p.file!);
    if (picked.some((p) => !p.file)) {
      const more = await vscode.window.showOpenDialog({ canSelectMany: true, filters: { 'ONNX models': ['onnx'] }, title: 'Models to fuse' });
      if (more) files = [...new Set([...files, ...more.map((u) => u.fsPath)])];
    }
    if (files.length < 2) {
      void vscode.window.showWarningMessage(
        'otfuse: fusion needs two or more models — it aligns the neurons of each model onto an anchor with optimal transport and averages them. Select at least two .onnx files of the same architecture.',
      );
      return undefined;
    }
    return files;
  }

  async pickAnchor(models: string[]): Promise<string | undefined> {
    const last = this.state.get<string>('otfuse.anchor');
    const ordered = [...models].sort((a, b) => (a === last ? -1 : b === last ? 1 : 0));
    const pick = await vscode.window.showQuickPick(
      ordered.map((m) => ({ label: path.basename(m), description: m === last ? 'last used' : vscode.workspace.asRelativePath(m), file: m })),
      {
        title: 'Fuse Models: anchor',
        placeHolder: 'The anchor model: its graph and widths define the fused model',
      },
    );
    if (pick) await this.state.update('otfuse.anchor', pick.file);
    return pick?.file;
  }

  /** The model's inputs (names, shapes), read without an ONNX Runtime session; cached per file version. */
  async modelInputs(model: string): Promise<ModelSummary['inputs'] | undefined> {
    return (await this.modelInfo(model))?.inputs;
  }

  /** Inputs, and whether the model is a causal LM (a GPT-2 / Llama HF folder, or an ONNX file imported from one:
   * its 'otfuse.hf.architecture' metadata names a …ForCausalLM / …LMHeadModel class). */
  private async modelInfo(model: string): Promise<{ inputs: ModelSummary['inputs']; causalLm: boolean } | undefined> {
    try {
      const mtime = fs.statSync(model).mtimeMs;
      const hit = this.inputs.get(model);
      if (hit && hit.mtime === mtime) return hit;
      const r = await this.d.engines.engine.inspect({ model, noSession: true });
      const info = { mtime, inputs: r.summary.inputs, causalLm: isCausalLmArchitecture(r.summary.metadata?.['otfuse.hf.architecture']) };
      this.inputs.set(model, info);
      return info;
    } catch {
      return undefined;
    }
  }

  private async describe(files: string[]): Promise<Map<string, DataDescription>> {
    const out = new Map<string, DataDescription>();
    const todo: string[] = [];
    for (const f of files) {
      let mtime = 0;
      try {
        mtime = fs.statSync(f).mtimeMs;
      } catch {
        /* gone */
      }
      const hit = this.described.get(f);
      if (hit && hit.mtime === mtime) out.set(f, hit.d);
      else todo.push(f);
    }
    if (todo.length) {
      let fresh: DataDescription[];
      try {
        fresh = await this.d.engines.engine.describeData(todo);
      } catch (err) {
        fresh = todo.map((p) => ({ path: p, error: (err as Error).message }));
      }
      for (const desc of fresh) {
        let mtime = 0;
        try {
          mtime = fs.statSync(desc.path).mtimeMs;
        } catch {
          /* gone */
        }
        this.described.set(desc.path, { mtime, d: desc });
        out.set(desc.path, desc);
      }
    }
    return out;
  }

  async candidateFiles(): Promise<string[]> {
    const found = await vscode.workspace.findFiles('**/*.{npz,json,jsonl,csv,txt}', EXCLUDE, 300);
    return found.map((u) => u.fsPath).filter((f) => f.endsWith('.npz') || /\.(jsonl|csv|txt)$/.test(f) || isDatasetSpec(f));
  }

  async candidates(model: string | undefined): Promise<{ file: string; fit: DataFit }[]> {
    const info = model ? await this.modelInfo(model) : undefined;
    const causalLm = info?.causalLm === true;
    // Plain .txt files (READMEs, requirements) are offered only for a causal LM, and never described: the engine
    // reads them only through the model folder's tokenizer, which describeData does not have.
    const files = (await this.candidateFiles()).filter((f) => causalLm || !/\.txt$/i.test(f));
    const described = await this.describe(files.filter((f) => !/\.txt$/i.test(f)));
    return files.map((file) => ({ file, fit: fitOf(info?.inputs, described.get(file) ?? { path: file, error: 'not inspected' }, { causalLm }) }));
  }

  /** A data file for `model`: candidates that fit its inputs first (N and shapes shown), the others below. */
  async pickData(
    title: string,
    key: string,
    model: string | undefined,
    options: {
      heldOut?: boolean;
      near?: string;
      /** Files never offered here (the run's evaluation and calibration data in a training prompt). */
      exclude?: string[];
      /** Files a parent or this run trained on (path → why): listed apart, marked, never first. */
      trainedOn?: Map<string, string>;
      extra?: (vscode.QuickPickItem & { choice: symbol })[];
    } = {},
  ): Promise<string | symbol | undefined> {
    const last = this.state.get<string>(key);
    const excluded = new Set((options.exclude ?? []).map((f) => path.resolve(f)));
    const trained = options.trainedOn ?? new Map<string, string>();
    const ranked = rankData(
      (await this.candidates(model)).filter((c) => !excluded.has(path.resolve(c.file))),
      { last, near: options.near, heldOut: options.heldOut },
    );
    type Item = vscode.QuickPickItem & { file?: string; choice?: symbol };
    const item = (c: { file: string; fit: DataFit }): Item => ({
      label: c.fit.score === 0 ? `$(warning) ${path.basename(c.file)}` : path.basename(c.file),
      description: `${vscode.workspace.asRelativePath(c.file)}${c.file === last ? ' · last used' : ''}`,
      detail: c.fit.score === 0 ? `does not fit ${model ? path.basename(model) : 'the model'}: ${c.fit.reason}` : c.fit.reason,
      file: c.file,
    });
    const fits = ranked.filter((c) => c.fit.score > 0 && !trained.has(c.file));
    const usedForTraining = ranked.filter((c) => c.fit.score > 0 && trained.has(c.file));
    const misfits = ranked.filter((c) => c.fit.score === 0);
    const trainedItem = (c: { file: string; fit: DataFit }): Item => ({
      ...item(c),
      label: `$(alert) ${path.basename(c.file)}`,
      detail: `trained on: ${trained.get(c.file)} — not a held-out result · ${c.fit.reason}`,
    });
    const items: Item[] = [
      ...fits.map(item),
      ...(options.extra ?? []),
      ...(usedForTraining.length
        ? [{ label: 'Trained on (not held out)', kind: vscode.QuickPickItemKind.Separator } as Item, ...usedForTraining.map(trainedItem)]
        : []),
      ...(misfits.length
        ? [{ label: `Do not fit ${model ? path.basename(model) : 'the model'}`, kind: vscode.QuickPickItemKind.Separator } as Item, ...misfits.map(item)]
        : []),
      { label: '$(folder-opened) Browse…', alwaysShow: true },
    ];
    const pick = await vscode.window.showQuickPick(items, {
      title,
      matchOnDescription: true,
      placeHolder: 'A data set: .npz (x, or arrays named after the model inputs, + y), a .json data spec, IDX images, or .txt / .jsonl text for a causal LM',
    });
    if (!pick) return undefined;
    if (pick.choice) return pick.choice;
    let file = pick.file;
    if (!file) {
      const chosen = await vscode.window.showOpenDialog({
        canSelectMany: false,
        title,
        filters: { 'Data sets': ['npz', 'json', 'jsonl', 'csv', 'txt', 'gz', 'idx3-ubyte'] },
      });
      file = chosen?.[0]?.fsPath;
    }
    if (file) await this.state.update(key, file);
    return file;
  }

  /** Calibration data (activations) for fusing `model`, or training data (`exclude`: the sets it must not be). */
  async pickFile(title: string, key: string, model: string | undefined, exclude: (string | undefined)[] = []): Promise<string | undefined> {
    const r = await this.pickData(title, key, model, { exclude: exclude.filter((f): f is string => !!f) });
    return typeof r === 'string' ? r : undefined;
  }

  /** Evaluation data, separate from the calibration data: a held-out set next to it first; sets a parent or the
   * run trained on are marked and listed apart. */
  async pickEvalData(
    model: string,
    calibration: string,
    options: { title?: string; trainedOn?: Map<string, string>; skip?: boolean } = {},
  ): Promise<DataArg | typeof USE_CALIBRATION | typeof SKIP_EVALUATION | undefined> {
    const r = await this.pickData(options.title ?? `Fuse Models: evaluation data (held out, not the calibration data)`, 'otfuse.evalData', model, {
      heldOut: true,
      near: calibration || undefined,
      exclude: calibration ? [calibration] : [],
      trainedOn: options.trainedOn ?? trainingSets(await this.candidateFiles()),
      extra: [
        // (No calibration data — a weight-based fusion — no such choice.)
        ...(calibration
          ? [
              {
                label: '$(warning) Use the calibration data',
                description: path.basename(calibration),
                detail: 'accuracies will be labelled "measured on calibration data" — not a held-out result',
                choice: USE_CALIBRATION,
              },
            ]
          : []),
        ...(options.skip === false
          ? []
          : [{ label: '$(circle-slash) Skip evaluation', detail: 'fuse only; evaluate later with Re-evaluate Run', choice: SKIP_EVALUATION }]),
      ],
    });
    return r as DataArg | typeof USE_CALIBRATION | typeof SKIP_EVALUATION | undefined;
  }

  /** A preset or recipe file. With `partial`, the list also offers partial fusion (extension/commands/partialPick.ts):
   * its choice is asked for, then the preset again, and the recipe carries both. */
  async pickRecipe(partial?: PartialChoice, shaped?: { shape: FuseRecipe; text: string }): Promise<FuseRecipe | undefined> {
    const configured = vscode.workspace.getConfiguration('otfuse').get<string>('defaultRecipe', 'recommended');
    const used = this.state.get<string>('otfuse.preset');
    const last = used ?? configured;
    // "last used" only after a fusion chose it; on a first fuse the configured default says "default".
    const mark = used ? 'last used' : 'default';
    type Item = vscode.QuickPickItem & { id: string };
    const items: Item[] = (Object.keys(PRESETS) as PresetId[]).map((id) => ({
      id,
      label: PRESETS[id].label,
      detail: PRESETS[id].detail,
      description: id === last ? mark : undefined,
    }));
    if (last && !(last in PRESETS) && fs.existsSync(resolveWs(last)))
      items.push({ id: last, label: path.basename(last), detail: 'recipe file', description: mark });
    if (partial && !shaped)
      items.push({
        id: PARTIAL_ID,
        label: '$(type-hierarchy) Partial fusion (merge layers K) or the Pareto curve…',
        detail:
          "share only the first K blocks, each parent keeping the rest as a branch (K = 0: the parents' ensemble); or measure accuracy vs size for every K",
      });
    items.push({ id: 'open', label: '$(json) Open recipe JSON…', detail: 'a FuseRecipe file (*.otfuse.json)' });
    items.push({ id: 'form', label: '$(edit) New recipe…', detail: 'a form: solver, regularisation, residual policy, Q/K mode, weights → *.otfuse.json' });
    items.sort((a, b) => (a.id === last ? -1 : b.id === last ? 1 : 0));
    const pick = await vscode.window.showQuickPick(items, {
      title: shaped ? `Fuse Models: preset (${shaped.text})` : 'Fuse Models: preset',
      placeHolder: 'How to align the models',
    });
    if (!pick) return undefined;
    let id = pick.id;
    if (id === PARTIAL_ID && partial) {
      const chosen = await partial();
      return chosen ? this.pickRecipe(undefined, chosen) : undefined;
    }
    if (id === 'form') {
      void vscode.commands.executeCommand('otfuse.newRecipe');
      return undefined;
    }
    if (id === 'open') {
      const chosen = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'Recipe JSON': ['json'] }, title: 'Recipe JSON' });
      if (!chosen?.[0]) return undefined;
      id = chosen[0].fsPath;
    }
    const recipe = recipeFor(id);
    await this.state.update('otfuse.preset', id);
    return shaped ? { ...recipe, ...shaped.shape } : recipe;
  }

  async pickOne(title: string): Promise<string | undefined> {
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    const active = tab instanceof vscode.TabInputCustom ? tab.uri.fsPath : vscode.window.activeTextEditor?.document.uri.fsPath;
    if (active?.endsWith('.onnx')) return active;
    // A model.safetensors open in the model view stands for its Hugging Face folder.
    const activeHf = active ? hfModelFolder(active) : undefined;
    if (activeHf) return activeHf;
    const found = await vscode.workspace.findFiles('**/*.onnx', EXCLUDE, 200);
    const folders = await findHfFolders();
    const pick = await vscode.window.showQuickPick(
      [
        ...found.map((u) => ({ label: path.basename(u.fsPath), description: vscode.workspace.asRelativePath(u), file: u.fsPath })),
        // Hugging Face folders from the palette too, named by the folder (not "model.safetensors").
        ...folders.map((f) => ({
          label: `$(folder) ${path.basename(f)}`,
          description: `${vscode.workspace.asRelativePath(f)} · Hugging Face folder`,
          file: f,
        })),
      ],
      { title },
    );
    return pick?.file;
  }
}

export function recipeFor(id: string): FuseRecipe {
  if (id in PRESETS) return { ...PRESETS[id as PresetId].recipe };
  const raw = JSON.parse(Buffer.from(readRegularFile(resolveWs(id), 'BAD_USAGE', 'recipe', 1 << 20)).toString('utf8')) as Record<string, unknown>;
  // Editor hints such as "$schema" are not recipe options.
  return Object.fromEntries(Object.entries(raw).filter(([k]) => !k.startsWith('$'))) as FuseRecipe;
}

/** Sets named as training splits (e.g. fmnist-train-5k.json): the parents' training data, so not held out. Merged
 * with what the run itself recorded (its finetune's training data) by the callers that know the run. */
export function trainingSets(files: string[], known: [string, string][] = []): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of files) if (looksTraining(f)) out.set(f, 'a training split (by its name), the kind of data the parents learned from');
  for (const [f, why] of known) out.set(f, why);
  return out;
}
