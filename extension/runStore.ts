// The extension's run store: the runs folder read through the engine's run-folder module (worker/runs/store),
// cached, and one change event that the Runs tree and the Alignment view subscribe to (like a custom editor's
// onDidChangeContent). Commands that change a run (through the engine) call notify(dir); the file watcher covers
// the CLI and other windows.
import * as vscode from 'vscode';
import path from 'node:path';
import { deleteRun, listRuns, readRun, type RunEntry } from '../worker/client';

export type { RunEntry };

/** `dir`: the run that changed (undefined: the list itself may have changed). */
export interface RunChange {
  dir?: string;
}

export function runsFolder(): string | undefined {
  const setting = vscode.workspace.getConfiguration('otfuse').get<string>('runsFolder', '.otfuse/runs') || '.otfuse/runs';
  if (path.isAbsolute(setting)) return setting;
  const ws = vscode.workspace.workspaceFolders?.[0];
  return ws ? path.join(ws.uri.fsPath, setting) : undefined;
}

export class RunStore implements vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<RunChange>();
  readonly onDidChange = this.emitter.event;
  private watcher?: vscode.FileSystemWatcher;
  private cache?: RunEntry[];
  private pending = new Set<string | undefined>();
  private timer?: NodeJS.Timeout;
  private readonly subs: vscode.Disposable[] = [];

  constructor() {
    this.watch();
    this.subs.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('otfuse.runsFolder')) {
          this.watch();
          this.notify();
        }
      }),
    );
  }

  get root(): string | undefined {
    return runsFolder();
  }

  /** Every run, newest first (cached until something changes). */
  list(): RunEntry[] {
    if (!this.cache) {
      const root = this.root;
      this.cache = root ? listRuns(root) : [];
    }
    return this.cache;
  }

  /** One run, read fresh from disk. */
  get(dir: string): RunEntry {
    return readRun(dir);
  }

  /** Tells every subscriber that a run (or the list) changed. */
  notify(dir?: string): void {
    this.cache = undefined;
    this.emitter.fire({ dir });
  }

  /** Deletes a run folder through the engine module (refuses folders that are not otfuse runs). */
  delete(dir: string): void {
    deleteRun(dir);
    this.notify();
  }

  private watch(): void {
    this.watcher?.dispose();
    const root = this.root;
    if (!root) return;
    this.watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(root), '*/run.json'));
    const later = (uri: vscode.Uri) => {
      this.pending.add(path.dirname(uri.fsPath));
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        const dirs = [...this.pending];
        this.pending.clear();
        this.cache = undefined;
        for (const dir of dirs) this.emitter.fire({ dir });
      }, 300);
    };
    this.watcher.onDidCreate(later);
    this.watcher.onDidChange(later);
    this.watcher.onDidDelete(later);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.watcher?.dispose();
    for (const s of this.subs) s.dispose();
    this.emitter.dispose();
  }
}
