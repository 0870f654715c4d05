// The extension's run store: the runs folder read through the engine's run.json reader (worker/runs/reader:
// size-limited, migrated, validated against the run schema), off the host thread (stat before read, reads in
// libuv's pool, one run parsed per event-loop turn), cached, and one change event that the Runs tree and the Alignment view subscribe to (like a custom editor's
// onDidChangeContent). Commands that change a run (through the engine) call notify(dir); the file watcher covers
// the CLI and other windows.
import * as vscode from 'vscode';
import path from 'node:path';
import { deleteRun, listRunFilesAsync, readRun, type RunEntry } from '../worker/client';

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
  /** The last list read (shown while a fresh one loads). */
  private last: RunEntry[] = [];
  private loading?: Promise<RunEntry[]>;
  private stale = false;
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

  /** Every run, newest first (cached until something changes). While the folder is being read (asynchronously)
   * this is the previous list; a change event follows when the fresh one is there. */
  list(): RunEntry[] {
    if (!this.cache) void this.listAsync();
    return this.cache ?? this.last;
  }

  /** Every run, newest first, once read (never blocks the extension host on a large or hostile run.json). */
  listAsync(): Promise<RunEntry[]> {
    if (this.cache) return Promise.resolve(this.cache);
    if (this.loading) return this.loading;
    const root = this.root;
    this.loading = (root ? listRunFilesAsync(root) : Promise.resolve([])).then((entries) => {
      this.loading = undefined;
      this.last = entries;
      if (this.stale) {
        this.stale = false;
        return this.listAsync();
      }
      this.cache = entries;
      this.emitter.fire({});
      return entries;
    });
    return this.loading;
  }

  /** One run, read fresh from disk (bounded: a run.json over the reader's size limit is refused by its size). */
  get(dir: string): RunEntry {
    return readRun(dir);
  }

  /** Tells every subscriber that a run (or the list) changed. */
  notify(dir?: string): void {
    this.cache = undefined;
    if (this.loading) this.stale = true; // changed while being read: read again afterwards
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
        if (this.loading) this.stale = true;
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
