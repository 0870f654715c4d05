// Merge Models (shared base): fine-tunes of one checkpoint need no alignment; they are merged with a method of the
// engine's merge registry (task arithmetic, TIES, DARE, SLERP, linear). The method list and every parameter prompt
// (domain, default, validation) come from engine.mergeMethods(), so a method added to the registry appears here.
import * as vscode from 'vscode';
import path from 'node:path';
import type { MergeMethodDescription } from '../../worker/api';
import type { DataArg, MergeParams, MergeResult, SharedBaseReport } from '../../worker/types';
import { hfModelFolder } from '../hf';
import { pct } from '../format';
import type { Deps } from './deps';
import { showError, trusted } from './notify';
import type { Pickers } from './pickers';

/** Options for running Merge Models without prompts (tests, the Fuse flow's offer). */
export interface MergeOptions {
  models?: string[];
  base?: string;
  method?: MergeMethodDescription['name'];
  params?: MergeParams;
  evalData?: DataArg;
  skipEval?: boolean;
  runsDir?: string;
  quiet?: boolean;
  /** The shared-base report that led here (its base, when found, is offered first). */
  report?: SharedBaseReport;
}

type ParamDescription = MergeMethodDescription['params'][number];

/** Parses and checks one parameter typed by the user against its registry domain text; returns an error or the value. */
function parseParam(p: ParamDescription, text: string, models: number): { value?: number | number[] | boolean; error?: string } {
  const t = text.trim();
  if (p.type === 'boolean') return t === 'true' || t === 'false' ? { value: t === 'true' } : { error: 'true or false' };
  const nums = t.split(',').map((x) => Number(x.trim()));
  if (!t || nums.some((n) => !Number.isFinite(n))) return { error: `a number${p.type === 'numberList' ? ' list (comma-separated)' : ''}: ${p.domain}` };
  if (p.type === 'numberList') return nums.length === models ? { value: nums } : { error: `${models} comma-separated weights, one per model (${p.domain})` };
  return { value: nums[0] };
}

export function mergeCommands(d: Deps, pickers: Pickers) {
  /** Asks for each parameter of the method (registry order), prefilled with its default; Escape cancels. */
  async function askParams(method: MergeMethodDescription, models: number): Promise<MergeParams | undefined> {
    const params: Record<string, unknown> = {};
    for (const p of method.params) {
      const def = p.name === 'weights' ? new Array(models).fill(1).join(', ') : p.default !== undefined ? String(p.default) : '';
      const text = await vscode.window.showInputBox({
        title: `Merge (${method.name}): ${p.name}`,
        prompt: `${p.description} — ${p.domain}${p.required ? ' (required)' : ''}`,
        value: def,
        // The engine checks the domain again (resolveMergeParams) and names the flag when it refuses.
        validateInput: (v) => parseParam(p, v, models).error,
      });
      if (text === undefined) return undefined;
      const { value } = parseParam(p, text, models);
      if (value !== undefined && text.trim() !== def) params[p.name] = value;
      else if (p.required) params[p.name] = value;
    }
    return params as MergeParams;
  }

  async function pickBase(models: string[], report?: SharedBaseReport): Promise<string | undefined> {
    const found = report?.base ? [{ label: path.basename(report.base), description: `named by the config (${report.baseName})`, file: report.base }] : [];
    const choice = await vscode.window.showQuickPick(
      [...found, { label: 'Choose the base model…', description: 'the checkpoint the models were fine-tuned from', file: '' }],
      {
        title: `Merge: the base ${models.map((m) => path.basename(m)).join(' and ')} were fine-tuned from`,
      },
    );
    if (!choice) return undefined;
    if (choice.file) return choice.file;
    const picked = await vscode.window.showOpenDialog({
      canSelectMany: false,
      canSelectFolders: true,
      canSelectFiles: true,
      filters: { 'ONNX model': ['onnx'] },
    });
    return picked?.[0]?.fsPath;
  }

  async function merge(uri?: vscode.Uri, uris?: vscode.Uri[], options: MergeOptions = {}): Promise<MergeResult | undefined> {
    if (!trusted('Merging')) return undefined;
    const selected =
      options.models ??
      (uris && uris.length ? uris : uri ? [uri] : []).map((u) => u.fsPath).filter((p) => p.endsWith('.onnx') || hfModelFolder(p) !== undefined);
    const models = selected.length >= 2 ? selected : await pickers.pickModels(selected, 'Merge Models: choose the fine-tunes to merge');
    if (!models) return undefined;
    const methods = await d.engines.engine.mergeMethods();
    let method = methods.find((m) => m.name === options.method);
    if (!method) {
      const usable = methods.filter((m) => models.length >= m.minModels && (m.maxModels === undefined || models.length <= m.maxModels));
      const pick = await vscode.window.showQuickPick(
        usable.map((m) => ({ label: m.name, description: m.title, detail: m.formula, method: m })),
        { title: 'Merge: method (same base; no alignment)', matchOnDetail: true },
      );
      if (!pick) return undefined;
      method = pick.method;
    }
    const base = options.base ?? (method.needsBase ? await pickBase(models, options.report) : undefined);
    if (method.needsBase && !base) return undefined;
    const params = options.params ?? (await askParams(method, models.length));
    if (!params) return undefined;
    let evalData = options.evalData;
    if (evalData === undefined && !options.skipEval)
      evalData = await pickers.pickFile(`Merge: evaluation data (Escape: no evaluation)`, 'otfuse.evalData', base ?? models[0]);
    const request = {
      models,
      ...(base ? { base } : {}),
      method: method.name,
      params,
      runsDir: options.runsDir ?? d.store.root,
      provider: d.engines.provider(),
      ...(evalData !== undefined ? { evalData, evalLimit: pickers.evalLimit() } : {}),
    };
    try {
      const result = await d.jobs.run(`Merging ${models.map((m) => path.basename(m)).join(' + ')} (${method.name})`, (ctx) =>
        d.engines.engine.merge(request, ctx),
      );
      d.log.info(`merge written to ${result.runDir}: ${result.record.metrics.map((m) => `${m.label} ${pct(m.accuracy)}`).join(', ')}`);
      d.store.notify(result.runDir);
      if (!options.quiet) {
        const merged = result.record.metrics.find((m) => m.role === 'merged');
        void vscode.window
          .showInformationMessage(`otfuse: merged with ${method.name}${merged ? ` — ${pct(merged.accuracy)}` : ''}.`, 'Open Run', 'Reveal Merged Model')
          .then((c) => {
            if (c === 'Open Run') void vscode.commands.executeCommand('otfuse.openRun', result.runDir);
            else if (c) void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(result.output));
          });
      }
      return result;
    } catch (err) {
      showError(d, 'merge', err, () => merge(undefined, undefined, { ...options, models, base, method: method!.name, params, evalData }));
      if (options.quiet) throw err;
      return undefined;
    }
  }

  /**
   * The Fuse flow's offer: when the chosen models share a base, ask whether to merge them instead of aligning.
   * Returns 'fuse' to go on with OT fusion, or 'done' when the user merged or cancelled.
   */
  async function offerMerge(models: string[]): Promise<'fuse' | 'done'> {
    let report: SharedBaseReport;
    try {
      report = await d.engines.engine.sharedBase({ models });
    } catch {
      return 'fuse'; // the fusion's own checks will say what is wrong
    }
    if (!report.shared) return 'fuse';
    const items = [
      { label: 'Merge (shared base)…', description: 'task arithmetic, TIES, DARE, SLERP, linear', detail: report.message, merge: true },
      { label: 'Fuse with OT anyway', description: 'alignment will find (close to) the identity', merge: false },
    ];
    const pick = await vscode.window.showQuickPick(items, {
      title: `These models share a base (median tensor distance ${report.medianRatio.toFixed(2)}× a random pairing's)`,
    });
    const choice = pick === undefined ? undefined : pick.merge ? 'Merge (shared base)…' : 'Fuse with OT anyway';
    if (choice === 'Fuse with OT anyway') return 'fuse';
    if (choice === 'Merge (shared base)…') await merge(undefined, undefined, { models, report, ...(report.base ? { base: report.base } : {}) });
    return 'done';
  }

  return { merge, offerMerge };
}
