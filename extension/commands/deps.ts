// What every command family gets: the extension's services.
import type * as vscode from 'vscode';
import type { EngineHost } from '../engineHost';
import type { JobRunner } from '../jobs';
import type { RunStore } from '../runStore';
import type { RunsTree } from '../runsTree';
import type { AlignmentView } from '../alignmentView';
import type { Panels } from '../panels';

export interface Deps {
  context: vscode.ExtensionContext;
  engines: EngineHost;
  jobs: JobRunner;
  store: RunStore;
  runs: RunsTree;
  alignment: AlignmentView;
  panels: Panels;
  log: vscode.LogOutputChannel;
}

/** A run folder from a command argument: a path, a Uri, a Runs tree node, else the run the Alignment view shows. */
export function dirOf(d: Deps, arg: unknown): string | undefined {
  if (typeof arg === 'string') return arg;
  if (arg && typeof (arg as { fsPath?: unknown }).fsPath === 'string') return (arg as { fsPath: string }).fsPath;
  return (arg as { entry?: { dir: string } } | undefined)?.entry?.dir ?? d.alignment.currentRun;
}
