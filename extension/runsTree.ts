// The Runs tree: one item per run folder (status icon, headline accuracy, date), expanding into its rows,
// map count and fused model. Subscribes to the run store; shows which runs have a job in progress.
import * as vscode from 'vscode';
import path from 'node:path';
import { runPath } from '../worker/client';
import type { RunEntry, RunStore } from './runStore';
import type { JobRunner } from './jobs';
import { mainAccuracy, measuredOn, pct } from './format';

type Node = { kind: 'run'; entry: RunEntry } | { kind: 'detail'; label: string; description?: string; icon?: string; file?: string; tooltip?: string };

export class RunsTree implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly subs: vscode.Disposable[];

  constructor(
    private readonly store: RunStore,
    private readonly jobs: JobRunner,
  ) {
    this.subs = [store.onDidChange(() => this.emitter.fire(undefined)), jobs.onBusyRuns(() => this.emitter.fire(undefined))];
  }

  /** Kept for the refresh command: re-reads the folder. */
  refresh(): void {
    this.store.notify();
  }

  runs(): RunEntry[] {
    return this.store.list();
  }

  getChildren(node?: Node): Node[] {
    if (!node) return this.store.list().map((entry) => ({ kind: 'run', entry }));
    if (node.kind !== 'run' || !node.entry.record) return [];
    const r = node.entry.record;
    const on = measuredOn(r);
    const out: Node[] = r.metrics.map((m) => ({
      kind: 'detail',
      label: m.label,
      icon: 'graph',
      tooltip: `${m.label}: ${pct(m.accuracy)} ${on}`,
      description: `${pct(m.accuracy)}${m.loss !== undefined ? `  loss ${m.loss.toFixed(3)}` : ''}${r.evalIsCalibration ? '  (calibration data)' : ''}`,
    }));
    out.push({ kind: 'detail', label: `${r.layers.length} aligned layer maps`, icon: 'type-hierarchy' });
    const fused = runPath(node.entry.dir, r.fusedModel);
    if (fused) out.push({ kind: 'detail', label: path.basename(fused), description: 'fused model', icon: 'file-binary', file: fused });
    if (r.error) out.push({ kind: 'detail', label: r.error.code, description: r.error.message, icon: 'error' });
    return out;
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.kind === 'detail') {
      const item = new vscode.TreeItem(node.label);
      item.description = node.description;
      item.iconPath = node.icon ? new vscode.ThemeIcon(node.icon) : undefined;
      item.tooltip = node.tooltip ?? (node.description ? `${node.label}: ${node.description}` : node.label);
      if (node.file) {
        item.resourceUri = vscode.Uri.file(node.file);
        item.command = { command: 'vscode.open', title: 'Open', arguments: [vscode.Uri.file(node.file)] };
      }
      return item;
    }
    const { entry } = node;
    const r = entry.record;
    const item = new vscode.TreeItem(r?.name ?? path.basename(entry.dir), r ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    item.id = entry.dir;
    const status = r?.status ?? 'failed';
    const finetuned = !!r?.finetune;
    const busy = this.jobs.isRunBusy(entry.dir);
    item.contextValue = `run.${status === 'done' && finetuned ? 'finetuned' : status}${busy ? '.busy' : ''}`;
    item.iconPath =
      busy || status === 'running'
        ? new vscode.ThemeIcon('sync~spin')
        : status === 'done'
          ? new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed'))
          : status === 'cancelled'
            ? new vscode.ThemeIcon('circle-slash')
            : new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed'));
    item.description = r
      ? `${pct(mainAccuracy(r))}${r.evalIsCalibration ? ' (calib.)' : ''} · ${new Date(r.createdAt).toLocaleString()}`
      : 'unreadable run.json';
    item.tooltip = r
      ? `${r.name}\n${status}${finetuned ? ' (finetuned)' : ''}${busy ? ' — a job is running on it' : ''}\nmodels: ${r.models.map((m) => path.basename(m)).join(', ')}\nanchor: ${path.basename(r.anchor)}\nmeasured ${measuredOn(r) || '—'}\n${entry.dir}`
      : entry.error;
    item.command = { command: 'otfuse.openRun', title: 'Open Run', arguments: [entry.dir] };
    return item;
  }

  getParent(): undefined {
    return undefined;
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.emitter.dispose();
  }
}
