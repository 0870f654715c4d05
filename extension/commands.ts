// The commands: Fuse Models, Evaluate Model, Inspect Alignment Structure, Quick Finetune, Open Run, Cancel Run and
// the Runs tree actions. Each returns its result so that tests (and other extensions) can use it.
import * as vscode from 'vscode';
import fs from 'node:fs';
import path from 'node:path';
import type { DataArg, EvaluateResult, FinetuneResult, FuseRecipe, FuseResult, RunRecord } from '../worker/types';
import type { EngineHost } from './engineHost';
import type { JobRunner } from './jobs';
import { pct, readRun, runPath, runsFolder, writeRun } from './runs';
import { isRunFolder } from '../worker/onnx/files';
import type { RunsTree } from './runs';
import type { AlignmentView } from './alignmentView';
import { hfModelFolder } from './hf';

export type PresetId = 'recommended' | 'exact' | 'weight-based';
export const PRESETS: Record<PresetId, { label: string; detail: string; recipe: FuseRecipe }> = {
  recommended: { label: 'Recommended', detail: 'activation-based soft alignment (Sinkhorn), residual mean — the paper\'s best setting', recipe: { preset: 'default' } },
  exact: { label: 'Exact', detail: 'hard alignment (EMD), heads matched as units — reproduces a permuted copy exactly', recipe: { preset: 'exact' } },
  'weight-based': { label: 'Weight-based', detail: 'no data needed for alignment: cost from the weights themselves', recipe: { preset: 'weights' } },
};

/** Options for running Fuse Models without prompts (tests, other extensions). */
export interface FuseOptions {
  anchor?: string;
  /** Calibration data (activations) — and evaluation data unless `evalData` is given. */
  data?: DataArg;
  /** A separate data set to evaluate parents, vanilla and the fused model on (e.g. a held-out test split). */
  evalData?: DataArg;
  preset?: PresetId;
  recipe?: FuseRecipe | string;
  runsDir?: string;
  evalLimit?: number;
  /** Do not show the result notification. */
  quiet?: boolean;
}

interface Deps {
  context: vscode.ExtensionContext;
  engines: EngineHost;
  jobs: JobRunner;
  runs: RunsTree;
  alignment: AlignmentView;
  log: vscode.LogOutputChannel;
}

const EXCLUDE = '**/{node_modules,.git,.otfuse,.e2e,dist,dist-test,out}/**';

export function registerCommands(d: Deps): vscode.Disposable[] {
  const state = d.context.workspaceState;
  const showError = (what: string, err: unknown) => {
    const e = err as { code?: string; message?: string };
    if (e?.code === 'CANCELLED') { void vscode.window.showInformationMessage(`otfuse: ${what} cancelled.`); return; }
    d.log.error(`${what}: ${e?.code ?? ''} ${e?.message ?? err}`);
    void vscode.window.showErrorMessage(`otfuse: ${what} failed — ${e?.message ?? err}`, 'Show Log').then((c) => { if (c) d.log.show(); });
  };

  /** Running models executes them with ONNX Runtime: only in a trusted workspace (limited mode otherwise). */
  function trusted(what: string): boolean {
    if (vscode.workspace.isTrusted) return true;
    void vscode.window.showWarningMessage(`otfuse: ${what} needs a trusted workspace (it runs the model files with ONNX Runtime).`, 'Manage Workspace Trust')
      .then((c) => { if (c) void vscode.commands.executeCommand('workbench.trust.manage'); });
    return false;
  }

  async function pickModels(uri?: vscode.Uri, uris?: vscode.Uri[]): Promise<string[] | undefined> {
    const selected = (uris && uris.length ? uris : uri ? [uri] : []).map((u) => u.fsPath).filter((p) => p.endsWith('.onnx') || hfModelFolder(p) !== undefined);
    if (selected.length >= 2) return selected;
    const found = await vscode.workspace.findFiles('**/*.onnx', EXCLUDE, 200);
    const items: (vscode.QuickPickItem & { file?: string })[] = found.map((u) => ({ label: path.basename(u.fsPath), description: vscode.workspace.asRelativePath(u), file: u.fsPath, picked: selected.includes(u.fsPath) }));
    items.push({ label: '$(folder-opened) Browse…', alwaysShow: true });
    const picked = await vscode.window.showQuickPick(items, { canPickMany: true, title: 'Fuse Models: choose two or more models', placeHolder: 'The models to fuse (.onnx)' });
    if (!picked) return undefined;
    let files = picked.filter((p) => p.file).map((p) => p.file!);
    if (picked.some((p) => !p.file) || files.length < 2) {
      const more = await vscode.window.showOpenDialog({ canSelectMany: true, filters: { 'ONNX models': ['onnx'] }, title: 'Models to fuse' });
      if (more) files = [...new Set([...files, ...more.map((u) => u.fsPath)])];
    }
    if (files.length < 2) { void vscode.window.showWarningMessage('otfuse: choose at least two .onnx models to fuse.'); return undefined; }
    return files;
  }

  async function pickAnchor(models: string[]): Promise<string | undefined> {
    const last = state.get<string>('otfuse.anchor');
    const ordered = [...models].sort((a, b) => (a === last ? -1 : b === last ? 1 : 0));
    const pick = await vscode.window.showQuickPick(ordered.map((m) => ({ label: path.basename(m), description: m === last ? 'last used' : vscode.workspace.asRelativePath(m), file: m })), {
      title: 'Fuse Models: anchor', placeHolder: 'The anchor model: its graph and widths define the fused model',
    });
    return pick?.file;
  }

  async function pickData(title: string, key: string): Promise<string | undefined> {
    const last = state.get<string>(key);
    const found = await vscode.workspace.findFiles('**/*.{npz,json,jsonl,csv}', EXCLUDE, 300);
    const files = found.map((u) => u.fsPath).filter((f) => f.endsWith('.npz') || /\.(jsonl|csv)$/.test(f) || isDatasetSpec(f));
    if (last && fs.existsSync(last) && !files.includes(last)) files.unshift(last);
    files.sort((a, b) => (a === last ? -1 : b === last ? 1 : a.localeCompare(b)));
    const items: (vscode.QuickPickItem & { file?: string })[] = files.map((f) => ({ label: path.basename(f), description: f === last ? 'last used' : vscode.workspace.asRelativePath(f), file: f }));
    items.push({ label: '$(folder-opened) Browse…', alwaysShow: true });
    const pick = await vscode.window.showQuickPick(items, { title, placeHolder: 'A data set: .npz (x, or arrays named after the model inputs, + y), a .json data spec or IDX images' });
    if (!pick) return undefined;
    let file = pick.file;
    if (!file) {
      const chosen = await vscode.window.showOpenDialog({ canSelectMany: false, title, filters: { 'Data sets': ['npz', 'json', 'jsonl', 'csv', 'gz', 'idx3-ubyte'] } });
      file = chosen?.[0]?.fsPath;
    }
    if (file) await state.update(key, file);
    return file;
  }

  async function pickRecipe(): Promise<{ recipe: FuseRecipe; preset: string } | undefined> {
    const configured = vscode.workspace.getConfiguration('otfuse').get<string>('defaultRecipe', 'recommended');
    const last = state.get<string>('otfuse.preset') ?? configured;
    type Item = vscode.QuickPickItem & { id: string };
    const items: Item[] = (Object.keys(PRESETS) as PresetId[]).map((id) => ({ id, label: PRESETS[id].label, detail: PRESETS[id].detail, description: id === last ? 'last used' : undefined }));
    if (last && !(last in PRESETS) && fs.existsSync(resolveWs(last))) items.push({ id: last, label: path.basename(last), detail: 'recipe file', description: 'last used' });
    items.push({ id: 'open', label: '$(json) Open recipe JSON…', detail: 'a FuseRecipe file (*.otfuse.json)' });
    items.sort((a, b) => (a.id === last ? -1 : b.id === last ? 1 : 0));
    const pick = await vscode.window.showQuickPick(items, { title: 'Fuse Models: preset', placeHolder: 'How to align the models' });
    if (!pick) return undefined;
    let id = pick.id;
    if (id === 'open') {
      const chosen = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'Recipe JSON': ['json'] }, title: 'Recipe JSON' });
      if (!chosen?.[0]) return undefined;
      id = chosen[0].fsPath;
    }
    const recipe = recipeFor(id);
    await state.update('otfuse.preset', id);
    return { recipe, preset: id };
  }

  function recipeFor(id: string): FuseRecipe {
    if (id in PRESETS) return { ...PRESETS[id as PresetId].recipe };
    return JSON.parse(fs.readFileSync(resolveWs(id), 'utf8')) as FuseRecipe;
  }

  function evalLimit(): number | undefined {
    const n = vscode.workspace.getConfiguration('otfuse').get<number>('evalLimit', 0);
    return n > 0 ? n : undefined;
  }

  async function fuse(uri?: vscode.Uri, uris?: vscode.Uri[], options: FuseOptions = {}): Promise<FuseResult | undefined> {
    if (!trusted('Fusing')) return undefined;
    const models = await pickModels(uri, uris);
    if (!models) return undefined;
    const anchor = options.anchor ?? await pickAnchor(models);
    if (!anchor) return undefined;
    await state.update('otfuse.anchor', anchor);
    const data = options.data ?? await pickData('Fuse Models: calibration and evaluation data', 'otfuse.data');
    if (!data) return undefined;
    let recipe: FuseRecipe;
    if (options.recipe) recipe = typeof options.recipe === 'string' ? recipeFor(options.recipe) : options.recipe;
    else if (options.preset) recipe = recipeFor(options.preset);
    else {
      const r = await pickRecipe();
      if (!r) return undefined;
      recipe = r.recipe;
    }
    const runsDir = options.runsDir ?? runsFolder();
    const evalData = options.evalData;
    const ordered = [anchor, ...models.filter((m) => m !== anchor)];
    const title = `Fusing ${ordered.map((m) => path.basename(m)).join(' + ')}`;
    void vscode.commands.executeCommand('otfuse.alignment.focus');
    try {
      const result = await d.jobs.run(title, (ctx) => d.engines.engine.fuse({
        models: ordered, anchor, data, ...(evalData !== undefined ? { evalData } : {}), recipe, runsDir, provider: d.engines.provider(), evalLimit: options.evalLimit ?? evalLimit(),
      }, ctx));
      if (result.record.data === undefined || result.record.evalData === undefined) {
        // Remember the data the metrics were measured on, so finetune / re-evaluate can use the same set.
        const recorded = { data: result.record.data ?? data, evalData: result.record.evalData ?? evalData ?? data };
        Object.assign(result.record, recorded);
        const onDisk = readRun(result.runDir).record;
        if (onDisk) writeRun(result.runDir, { ...onDisk, ...recorded });
      }
      d.log.info(`run written to ${result.runDir}: ${result.record.metrics.map((m) => `${m.label} ${pct(m.accuracy)}`).join(', ')}`);
      d.runs.refresh();
      await d.alignment.showRun(result.runDir);
      if (!options.quiet) {
        const summary = result.record.metrics.map((m) => `${m.label} ${pct(m.accuracy)}`).join(' · ');
        void vscode.window.showInformationMessage(`otfuse: fused → ${summary}`, 'Reveal Fused Model').then((c) => {
          if (c) void vscode.commands.executeCommand('otfuse.revealFusedModel', result.runDir);
        });
      }
      return result;
    } catch (err) {
      d.runs.refresh();
      showError('fusion', err);
      if (options.quiet) throw err;
      return undefined;
    }
  }

  async function evaluate(uri?: vscode.Uri, _uris?: unknown, options: { data?: DataArg; quiet?: boolean } = {}): Promise<EvaluateResult | undefined> {
    if (!trusted('Evaluating')) return undefined;
    const model = uri?.fsPath ?? await pickOne('Evaluate Model: choose a model');
    if (!model) return undefined;
    const data = options.data ?? await pickData(`Evaluate ${path.basename(model)}: data`, 'otfuse.evalData');
    if (!data) return undefined;
    try {
      const result = await d.jobs.run(`Evaluating ${path.basename(model)}`, (ctx) => d.engines.engine.evaluate({ model, data, provider: d.engines.provider(), limit: evalLimit() }, ctx));
      const text = `${path.basename(model)}: accuracy ${pct(result.accuracy)}, loss ${result.loss.toFixed(4)} on ${result.samples} samples (${result.provider.used}, ${result.seconds.toFixed(1)} s)`;
      d.log.info(text);
      if (!options.quiet) void vscode.window.showInformationMessage(`otfuse: ${text}`);
      return result;
    } catch (err) {
      showError(`evaluating ${path.basename(model)}`, err);
      if (options.quiet) throw err;
      return undefined;
    }
  }

  async function pickOne(title: string): Promise<string | undefined> {
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    const active = tab instanceof vscode.TabInputCustom ? tab.uri.fsPath : vscode.window.activeTextEditor?.document.uri.fsPath;
    const found = await vscode.workspace.findFiles('**/*.onnx', EXCLUDE, 200);
    const items = found.map((u) => ({ label: path.basename(u.fsPath), description: vscode.workspace.asRelativePath(u), file: u.fsPath }));
    if (active?.endsWith('.onnx')) return active;
    const pick = await vscode.window.showQuickPick(items, { title });
    return pick?.file;
  }

  const alignmentDocs = new Map<string, string>();
  const alignmentProvider = vscode.workspace.registerTextDocumentContentProvider('otfuse-alignment', {
    provideTextDocumentContent: (u) => alignmentDocs.get(u.path) ?? '',
  });

  async function inspectAlignment(uri?: vscode.Uri): Promise<string | undefined> {
    const model = uri?.fsPath ?? await pickOne('Inspect Alignment Structure: choose a model');
    if (!model) return undefined;
    try {
      const result = await d.engines.engine.inspect({ model, alignment: true });
      const a = result.alignment!;
      const text = [`# Alignment structure of ${model}`, `hidden ${a.hiddenSize} · layers ${a.layers} · heads ${a.heads} × ${a.headDim}`, '', a.text].join('\n');
      const docPath = `/${path.basename(model)}.alignment.txt`;
      alignmentDocs.set(docPath, text);
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.from({ scheme: 'otfuse-alignment', path: docPath }));
      await vscode.window.showTextDocument(doc, { preview: true });
      return text;
    } catch (err) {
      showError(`inspecting ${path.basename(model)}`, err);
      return undefined;
    }
  }

  async function finetune(target?: vscode.Uri | string, _uris?: unknown, options: { data?: DataArg; evalData?: DataArg; epochs?: number; quiet?: boolean } = {}): Promise<FinetuneResult | undefined> {
    if (!trusted('Finetuning')) return undefined;
    // A run folder (tree item or path) or a model file.
    let runDir: string | undefined;
    let model: string | undefined;
    const p = typeof target === 'string' ? target : target instanceof vscode.Uri ? target.fsPath : (target as { entry?: { dir: string } } | undefined)?.entry?.dir;
    if (p && fs.existsSync(path.join(p, 'run.json'))) runDir = p;
    else if (p?.endsWith('.onnx')) model = p;
    else if (!p) model = await pickOne('Quick Finetune: choose a model');
    let record: RunRecord | undefined;
    if (runDir) {
      record = readRun(runDir).record;
      model = record && runPath(runDir, record.fusedModel);
    }
    if (!model) return undefined;
    const data = options.data ?? await pickData(`Quick Finetune ${path.basename(model)}: training data`, 'otfuse.trainData');
    if (!data) return undefined;
    const evalData = options.evalData ?? record?.evalData ?? record?.data ?? await pickData(`Quick Finetune ${path.basename(model)}: evaluation data`, 'otfuse.data');
    if (!evalData) return undefined;
    const output = runDir ? path.join(runDir, 'finetuned.onnx') : model.replace(/\.onnx$/, '.finetuned.onnx');
    try {
      const result = await d.jobs.run(`Finetuning ${path.basename(model)}`, (ctx) => d.engines.engine.finetune({
        model, data, evalData, output, epochs: options.epochs ?? 1, provider: d.engines.provider(),
      }, ctx));
      const last = result.evals[result.evals.length - 1];
      if (runDir && record) {
        const fresh = readRun(runDir).record ?? record;
        fresh.finetune = result;
        const metrics = fresh.metrics.filter((m) => m.label !== 'ot+finetune');
        metrics.push({ label: 'ot+finetune', file: output, accuracy: last?.accuracy, loss: last?.loss });
        fresh.metrics = metrics;
        writeRun(runDir, fresh);
        d.runs.refresh();
        await d.alignment.showRun(runDir);
      }
      const text = `finetuned ${path.basename(model)} → ${path.basename(output)}: ${result.steps} steps${last ? `, accuracy ${pct(last.accuracy)}` : ''}`;
      d.log.info(text);
      if (!options.quiet) void vscode.window.showInformationMessage(`otfuse: ${text}`);
      return result;
    } catch (err) {
      showError(`finetuning ${path.basename(model)}`, err);
      if (options.quiet) throw err;
      return undefined;
    }
  }

  function dirOf(arg: unknown): string | undefined {
    if (typeof arg === 'string') return arg;
    if (arg instanceof vscode.Uri) return arg.fsPath;
    return (arg as { entry?: { dir: string } } | undefined)?.entry?.dir ?? d.alignment.currentRun;
  }

  async function openRun(arg?: unknown): Promise<string | undefined> {
    let dir = dirOf(arg);
    if (!dir) {
      const items = d.runs.runs().length ? d.runs.runs() : (await Promise.resolve(d.runs.getChildren()), d.runs.runs());
      const pick = await vscode.window.showQuickPick(items.map((e) => ({ label: e.record?.name ?? path.basename(e.dir), description: e.record ? `${e.record.status} · ${pct(e.record.metrics.at(-1)?.accuracy)}` : e.error, dir: e.dir })), { title: 'Open Run' });
      dir = pick?.dir;
    }
    if (!dir) return undefined;
    await d.alignment.showRun(dir);
    return dir;
  }

  /** Evaluates the run's fused (and finetuned) model again; on the run's own data the metrics in run.json are updated. */
  async function reevaluate(arg?: unknown, _b?: unknown, options: { data?: DataArg; quiet?: boolean } = {}): Promise<EvaluateResult[] | undefined> {
    if (!trusted('Evaluating')) return undefined;
    const dir = dirOf(arg);
    const record = dir ? readRun(dir).record : undefined;
    if (!dir || !record) return undefined;
    const runData = record.evalData ?? record.data;
    const data = options.data ?? runData ?? await pickData(`Re-evaluate ${record.name}: data`, 'otfuse.evalData');
    if (!data) return undefined;
    const targets = record.metrics.filter((m) => m.file && (/^ot/i.test(m.label)) && fs.existsSync(runPath(dir, m.file)!));
    if (!targets.length) targets.push({ label: 'ot', file: runPath(dir, record.fusedModel) });
    try {
      const results = await d.jobs.run(`Re-evaluating ${record.name}`, async (ctx) => {
        const out: EvaluateResult[] = [];
        for (const t of targets) out.push(await d.engines.engine.evaluate({ model: runPath(dir, t.file)!, data, provider: d.engines.provider(), limit: evalLimit() }, ctx));
        return out;
      });
      if (JSON.stringify(data) === JSON.stringify(runData)) {
        const fresh = readRun(dir).record ?? record;
        fresh.metrics = fresh.metrics.map((m) => {
          const k = targets.findIndex((t) => t.label === m.label);
          return k >= 0 ? { ...m, accuracy: results[k].accuracy, loss: results[k].loss } : m;
        });
        writeRun(dir, fresh);
        d.runs.refresh();
        await d.alignment.showRun(dir, false);
      }
      const text = targets.map((t, k) => `${t.label} ${pct(results[k].accuracy)}`).join(' · ');
      d.log.info(`re-evaluated ${record.name}: ${text}`);
      if (!options.quiet) void vscode.window.showInformationMessage(`otfuse: ${record.name}: ${text}`);
      return results;
    } catch (err) {
      showError(`re-evaluating ${record.name}`, err);
      if (options.quiet) throw err;
      return undefined;
    }
  }

  async function reveal(arg?: unknown): Promise<void> {
    const dir = dirOf(arg);
    const record = dir ? readRun(dir).record : undefined;
    const fused = dir && record ? runPath(dir, record.fusedModel) : undefined;
    if (!fused) return;
    await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(fused));
  }

  async function deleteRun(arg?: unknown, _b?: unknown, options: { confirm?: boolean } = {}): Promise<boolean> {
    const dir = dirOf(arg);
    // Only a real otfuse run folder inside the runs folder (never any folder that happens to hold a run.json).
    if (!dir || !isRunFolder(dir, path.dirname(dir))) return false;
    if (options.confirm !== false) {
      const ok = await vscode.window.showWarningMessage(`Delete run '${path.basename(dir)}' and its files?`, { modal: true }, 'Delete');
      if (ok !== 'Delete') return false;
    }
    await vscode.workspace.fs.delete(vscode.Uri.file(dir), { recursive: true, useTrash: false });
    d.runs.refresh();
    return true;
  }

  const reg = (id: string, fn: (...args: any[]) => unknown) => vscode.commands.registerCommand(id, fn);
  return [
    alignmentProvider,
    reg('otfuse.fuseModels', fuse),
    reg('otfuse.evaluateModel', evaluate),
    reg('otfuse.inspectAlignment', inspectAlignment),
    reg('otfuse.quickFinetune', finetune),
    reg('otfuse.openRun', openRun),
    reg('otfuse.cancelRun', () => {
      const n = d.jobs.cancelAll();
      if (!n) void vscode.window.showInformationMessage('otfuse: nothing is running.');
      return n;
    }),
    reg('otfuse.refreshRuns', () => d.runs.refresh()),
    reg('otfuse.reevaluateRun', reevaluate),
    reg('otfuse.revealFusedModel', reveal),
    reg('otfuse.deleteRun', deleteRun),
    reg('otfuse.showLog', () => d.log.show()),
    reg('otfuse.restartWorker', () => d.engines.restart()),
  ];
}

function resolveWs(p: string): string {
  if (path.isAbsolute(p)) return p;
  const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  return ws ? path.join(ws, p) : p;
}

/** A .json data spec has a string `path` (and no `name`/`version` like package.json). */
function isDatasetSpec(file: string): boolean {
  if (/(^|[\\/])(package|tsconfig|package-lock|run)\.json$|\.otfuse\.json$/.test(file)) return false;
  try {
    if (fs.statSync(file).size > 64 * 1024) return false;
    const j = JSON.parse(fs.readFileSync(file, 'utf8'));
    return j && typeof j === 'object' && typeof j.path === 'string';
  } catch {
    return false;
  }
}
