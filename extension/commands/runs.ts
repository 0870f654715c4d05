// Commands on runs: Open, Re-evaluate, Reveal Fused Model, Delete, Compare, open a map large, exports.
import * as vscode from 'vscode';
import path from 'node:path';
import type { DataArg, EvaluateResult } from '../../worker/types';
import { runPath } from '../../worker/client';
import { fusedAccuracy, measuredOn, pct, uniqueNames } from '../format';
import { exportAccuracy, exportMap } from '../exports';
import { dirOf, type Deps } from './deps';
import { showError, trusted } from './notify';
import type { Pickers } from './pickers';

export function runCommands(d: Deps, pickers: Pickers) {
  async function pickRun(title: string, exclude?: string): Promise<string | undefined> {
    const all = await d.store.listAsync();
    const names = uniqueNames(all);
    // The fused model's accuracy, said so (the last row is often the ensemble), and what it was measured on.
    const items = all
      .filter((e) => e.dir !== exclude && e.record)
      .map((e) => {
        const r = e.record!;
        const fused = fusedAccuracy(r);
        return {
          label: names.get(e.dir) ?? r.name,
          description: `${r.status} · ${fused === undefined ? 'not evaluated' : `fused ${pct(fused)} ${measuredOn(r)}`}`,
          detail: `${r.models.map((m) => path.basename(m)).join(' + ')} · ${new Date(r.createdAt).toLocaleString()}`,
          dir: e.dir,
        };
      });
    if (!items.length) {
      void vscode.window.showInformationMessage('otfuse: no other run to choose.');
      return undefined;
    }
    return (await vscode.window.showQuickPick(items, { title }))?.dir;
  }

  async function openRun(arg?: unknown): Promise<string | undefined> {
    // From the palette (no argument) always ask, even when the Alignment view shows a run.
    const dir = (arg !== undefined ? dirOf(d, arg) : undefined) ?? (await pickRun('Open Run'));
    if (!dir) return undefined;
    await d.alignment.showRun(dir);
    return dir;
  }

  /** Evaluates the run's models again through the engine; on the run's own data run.json's metrics are updated. */
  async function reevaluate(arg?: unknown, _b?: unknown, options: { data?: DataArg; quiet?: boolean } = {}): Promise<EvaluateResult[] | undefined> {
    if (!trusted('Evaluating')) return undefined;
    const dir = dirOf(d, arg);
    const record = dir ? d.store.get(dir).record : undefined;
    if (!dir || !record) return undefined;
    const data =
      options.data ??
      record.evalData ??
      record.data ??
      (await pickers.pickFile(`Re-evaluate ${record.name}: data`, 'otfuse.evalData', runPath(dir, record.fusedModel)));
    if (!data) return undefined;
    try {
      const r = await d.jobs.run(
        `Re-evaluating ${record.name}`,
        (ctx) => d.engines.engine.reevaluateRun({ runDir: dir, data, provider: d.engines.provider(), limit: pickers.evalLimit() }, ctx),
        { runDir: dir },
      );
      if (r.updated) d.store.notify(dir);
      const text = r.results.map((x) => `${x.label} ${pct(x.accuracy)}`).join(' · ');
      d.log.info(`re-evaluated ${record.name}: ${text}`);
      if (!options.quiet)
        void vscode.window.showInformationMessage(
          `otfuse: ${record.name}: ${text} ${r.updated ? measuredOn(r.record) : `on ${path.basename(typeof data === 'string' ? data : data.path)} (run.json unchanged: not the run's evaluation data)`}`,
        );
      return r.results;
    } catch (err) {
      showError(d, `re-evaluating ${record.name}`, err, () => reevaluate(dir, undefined, { ...options, data }));
      if (options.quiet) throw err;
      return undefined;
    }
  }

  async function reveal(arg?: unknown): Promise<void> {
    const dir = dirOf(d, arg);
    const record = dir ? d.store.get(dir).record : undefined;
    const fused = dir && record ? runPath(dir, record.fusedModel) : undefined;
    if (fused) await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(fused));
  }

  async function deleteRun(arg?: unknown, _b?: unknown, options: { confirm?: boolean } = {}): Promise<boolean> {
    const dir = dirOf(d, arg);
    if (!dir) return false;
    if (d.jobs.isRunBusy(dir)) {
      void vscode.window.showWarningMessage('otfuse: a job is running on this run; cancel it first.');
      return false;
    }
    if (options.confirm !== false) {
      const ok = await vscode.window.showWarningMessage(`Delete run '${path.basename(dir)}' and its files?`, { modal: true }, 'Delete');
      if (ok !== 'Delete') return false;
    }
    try {
      d.store.delete(dir);
      return true;
    } catch (err) {
      showError(d, `deleting ${path.basename(dir)}`, err);
      return false;
    }
  }

  async function compare(arg?: unknown, other?: unknown): Promise<string[] | undefined> {
    // From the Runs tree with two or more runs selected: (clicked node, selected nodes).
    if (Array.isArray(other) && other.length >= 2) {
      const dirs = other.map((n) => dirOf(d, n)).filter((x): x is string => !!x);
      d.panels.openCompare(dirs.slice(0, 4));
      return dirs;
    }
    const a = dirOf(d, arg) ?? (await pickRun('Compare Runs: first run'));
    if (!a) return undefined;
    const b = typeof other === 'string' ? other : await pickRun(`Compare ${path.basename(a)} with…`, a);
    if (!b) return undefined;
    d.panels.openCompare([a, b]);
    return [a, b];
  }

  async function openMapLarge(arg?: unknown, tensor?: string): Promise<void> {
    const dir = dirOf(d, arg);
    if (!dir || typeof tensor !== 'string') return;
    await d.panels.openLarge(dir, tensor);
  }

  const exporting = (what: string, fn: (dir: string, tensor?: string) => Promise<string | null>) => async (arg?: unknown, tensor?: string) => {
    const dir = dirOf(d, arg);
    if (!dir) return null;
    try {
      return await fn(dir, tensor);
    } catch (err) {
      showError(d, `exporting ${what}`, err);
      return null;
    }
  };

  return {
    openRun,
    reevaluate,
    reveal,
    deleteRun,
    compare,
    openMapLarge,
    exportMapCsv: exporting('the map', (dir, t) => exportMap(dir, t ?? '', 'csv')),
    exportMapNpy: exporting('the map', (dir, t) => exportMap(dir, t ?? '', 'npy')),
    exportAccuracyCsv: exporting('the accuracy table', (dir) => exportAccuracy(dir, 'csv')),
    exportAccuracyMarkdown: exporting('the accuracy table', (dir) => exportAccuracy(dir, 'markdown')),
  };
}
