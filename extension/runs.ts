// The runs folder: one sub-folder per run with run.json (RunRecord), the fused model and maps.safetensors.
// The Runs tree lists it; the Alignment view shows one run.
import * as vscode from 'vscode';
import fs from 'node:fs';
import path from 'node:path';
import type { RunRecord } from '../worker/types';
import { readRegularFile } from '../worker/onnx/files';

export interface RunEntry {
  dir: string;
  record?: RunRecord;
  error?: string;
}

export function runsFolder(): string | undefined {
  const setting = vscode.workspace.getConfiguration('otfuse').get<string>('runsFolder', '.otfuse/runs') || '.otfuse/runs';
  if (path.isAbsolute(setting)) return setting;
  const ws = vscode.workspace.workspaceFolders?.[0];
  return ws ? path.join(ws.uri.fsPath, setting) : undefined;
}

export function readRun(dir: string): RunEntry {
  try {
    // A regular file of bounded size (a FIFO or a huge run.json in an untrusted workspace must not hang the host).
    const raw = JSON.parse(Buffer.from(readRegularFile(path.join(dir, 'run.json'), 'BAD_DATA', 'run record', 64 << 20)).toString('utf8')) as Partial<RunRecord>;
    if (!raw || typeof raw !== 'object') throw new Error('run.json is not an object');
    // Tolerate records from older or newer engines: the views rely on these being present.
    const record = {
      ...raw, id: raw.id ?? path.basename(dir), name: raw.name ?? path.basename(dir), status: raw.status ?? 'failed',
      createdAt: raw.createdAt ?? fs.statSync(path.join(dir, 'run.json')).mtime.toISOString(),
      models: raw.models ?? [], anchor: raw.anchor ?? raw.models?.[0] ?? '', fusedModel: raw.fusedModel ?? 'fused.onnx',
      metrics: Array.isArray(raw.metrics) ? raw.metrics : [], layers: Array.isArray(raw.layers) ? raw.layers : [],
      recipe: raw.recipe ?? {}, versions: raw.versions ?? {}, timings: raw.timings ?? {},
    } as RunRecord;
    return { dir, record };
  } catch (err) {
    return { dir, error: err instanceof Error ? err.message : String(err) };
  }
}

export function listRuns(root = runsFolder()): RunEntry[] {
  if (!root || !fs.existsSync(root)) return [];
  return fs.readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(root, d.name, 'run.json')))
    .map((d) => readRun(path.join(root, d.name)))
    .sort((a, b) => (b.record?.createdAt ?? path.basename(b.dir)).localeCompare(a.record?.createdAt ?? path.basename(a.dir)));
}

/** Resolves a path stored in run.json (absolute, or relative to the run folder). */
export function runPath(dir: string, p: string | undefined): string | undefined {
  if (!p) return undefined;
  return path.isAbsolute(p) ? p : path.join(dir, p);
}

export function mapsPath(entry: RunEntry): string | undefined {
  const p = runPath(entry.dir, entry.record?.mapsFile ?? 'maps.safetensors');
  return p && fs.existsSync(p) ? p : undefined;
}

/** Writes run.json atomically (temp file + rename) so a reader never sees half a record. */
export function writeRun(dir: string, record: RunRecord): void {
  const file = path.join(dir, 'run.json');
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(record, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

export function mainAccuracy(record: RunRecord): number | undefined {
  const m = [...record.metrics].reverse().find((x) => /ot/i.test(x.label) && x.accuracy !== undefined) ?? record.metrics.find((x) => x.accuracy !== undefined);
  return m?.accuracy;
}

export function pct(x: number | undefined): string {
  return x === undefined || Number.isNaN(x) ? '—' : `${(100 * x).toFixed(2)}%`;
}

type Node = { kind: 'run'; entry: RunEntry } | { kind: 'detail'; label: string; description?: string; icon?: string; file?: string };

export class RunsTree implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private watcher?: vscode.FileSystemWatcher;
  private entries: RunEntry[] = [];
  private timer?: NodeJS.Timeout;

  constructor() { this.watch(); }

  watch(): void {
    this.watcher?.dispose();
    const root = runsFolder();
    if (!root) return;
    this.watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(root), '**/run.json'));
    const later = () => { clearTimeout(this.timer); this.timer = setTimeout(() => this.refresh(), 300); };
    this.watcher.onDidCreate(later);
    this.watcher.onDidChange(later);
    this.watcher.onDidDelete(later);
  }

  refresh(): void { this.emitter.fire(undefined); }

  runs(): RunEntry[] { return this.entries; }

  nodeFor(dir: string): Node | undefined {
    const entry = this.entries.find((e) => e.dir === dir);
    return entry ? { kind: 'run', entry } : undefined;
  }

  getChildren(node?: Node): Node[] {
    if (!node) {
      this.entries = listRuns();
      return this.entries.map((entry) => ({ kind: 'run', entry }));
    }
    if (node.kind !== 'run' || !node.entry.record) return [];
    const r = node.entry.record;
    const out: Node[] = r.metrics.map((m) => ({ kind: 'detail', label: m.label, description: `${pct(m.accuracy)}${m.loss !== undefined ? `  loss ${m.loss.toFixed(3)}` : ''}`, icon: 'graph' }));
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
      item.tooltip = node.description ? `${node.label}: ${node.description}` : node.label;
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
    item.contextValue = `run.${status === 'done' && finetuned ? 'finetuned' : status}`;
    item.iconPath = status === 'done' ? new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed'))
      : status === 'running' ? new vscode.ThemeIcon('sync~spin')
        : status === 'cancelled' ? new vscode.ThemeIcon('circle-slash')
          : new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed'));
    item.description = r ? `${pct(mainAccuracy(r))} · ${new Date(r.createdAt).toLocaleString()}` : `unreadable run.json`;
    item.tooltip = r ? `${r.name}\n${status}${finetuned ? ' (finetuned)' : ''}\nmodels: ${r.models.map((m) => path.basename(m)).join(', ')}\nanchor: ${path.basename(r.anchor)}\n${entry.dir}` : entry.error;
    item.command = { command: 'otfuse.openRun', title: 'Open Run', arguments: [entry.dir] };
    return item;
  }

  getParent(): undefined { return undefined; }

  dispose(): void {
    clearTimeout(this.timer);
    this.watcher?.dispose();
    this.emitter.dispose();
  }
}
