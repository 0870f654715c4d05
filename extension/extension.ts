// otfuse extension entry: wires the engine worker, the run store, commands, the Runs tree, the Alignment view,
// the editor-tab panels and the model editor.
import * as vscode from 'vscode';
import { AlignmentView } from './alignmentView';
import { registerCommands } from './commands';
import { registerHfCommands } from './hf';
import { EngineHost } from './engineHost';
import { JobRunner } from './jobs';
import { ModelEditorProvider } from './modelEditor';
import { Panels } from './panels';
import { RunStore } from './runStore';
import { RunsTree } from './runsTree';
import type { Deps } from './commands/deps';

/** What activate() returns: used by the extension-host tests (the services every command family gets). */
export type OtfuseApi = Omit<Deps, 'context'>;

let host: EngineHost | undefined;

export function activate(context: vscode.ExtensionContext): OtfuseApi {
  const log = vscode.window.createOutputChannel('otfuse', { log: true });
  const engines = new EngineHost(context, log);
  host = engines;
  const jobs = new JobRunner(log);
  engines.busy = () => jobs.busy;
  const store = new RunStore();
  const runs = new RunsTree(store, jobs);
  const alignment = new AlignmentView(context.extensionUri, log, store, jobs);
  const panels = new Panels(context, store, log);
  const tree = vscode.window.createTreeView('otfuse.runs', { treeDataProvider: runs, showCollapseAll: true, canSelectMany: true });

  context.subscriptions.push(
    log,
    engines,
    jobs,
    store,
    runs,
    alignment,
    panels,
    tree,
    vscode.window.registerWebviewViewProvider(AlignmentView.id, alignment, { webviewOptions: { retainContextWhenHidden: true } }),
    vscode.window.registerCustomEditorProvider(ModelEditorProvider.viewType, new ModelEditorProvider(context, engines, log), {
      webviewOptions: { retainContextWhenHidden: true },
      supportsMultipleEditorsPerDocument: true,
    }),
    tree.onDidChangeSelection((e) => {
      const node = e.selection[0] as { kind?: string; entry?: { dir: string } } | undefined;
      if (e.selection.length === 1 && node?.kind === 'run' && node.entry) void alignment.showRun(node.entry.dir, false);
    }),
    ...registerCommands({ context, engines, jobs, store, runs, alignment, panels, log }),
    ...registerHfCommands({ engines, jobs, log }),
  );
  void vscode.commands.executeCommand('setContext', 'otfuse.busy', false);
  log.info(`otfuse activated (${context.extensionMode === vscode.ExtensionMode.Test ? 'test' : 'normal'} mode)`);
  return { engines, jobs, store, runs, alignment, panels, log };
}

export function deactivate(): void {
  host?.dispose();
  host = undefined;
}
