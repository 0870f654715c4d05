// otfuse extension entry: wires the engine worker, commands, the Runs tree, the Alignment view and the model editor.
import * as vscode from 'vscode';
import { AlignmentView } from './alignmentView';
import { registerCommands } from './commands';
import { registerHfCommands } from './hf';
import { EngineHost } from './engineHost';
import { JobRunner } from './jobs';
import { ModelEditorProvider } from './modelEditor';
import { RunsTree } from './runs';

/** What activate() returns: used by the extension-host tests. */
export interface OtfuseApi {
  engines: EngineHost;
  jobs: JobRunner;
  runs: RunsTree;
  alignment: AlignmentView;
  log: vscode.LogOutputChannel;
}

let host: EngineHost | undefined;

export function activate(context: vscode.ExtensionContext): OtfuseApi {
  const log = vscode.window.createOutputChannel('otfuse', { log: true });
  const engines = new EngineHost(context, log);
  host = engines;
  const jobs = new JobRunner(log);
  engines.busy = () => jobs.busy;
  const runs = new RunsTree();
  const alignment = new AlignmentView(context.extensionUri, log);
  const tree = vscode.window.createTreeView('otfuse.runs', { treeDataProvider: runs, showCollapseAll: true });

  context.subscriptions.push(
    log, engines, jobs, runs, alignment, tree,
    vscode.window.registerWebviewViewProvider(AlignmentView.id, alignment, { webviewOptions: { retainContextWhenHidden: true } }),
    vscode.window.registerCustomEditorProvider(ModelEditorProvider.viewType, new ModelEditorProvider(context, engines), {
      webviewOptions: { retainContextWhenHidden: true }, supportsMultipleEditorsPerDocument: true,
    }),
    jobs.onLive((live) => alignment.setLive(live)),
    tree.onDidChangeSelection((e) => {
      const node = e.selection[0] as { kind?: string; entry?: { dir: string } } | undefined;
      if (node?.kind === 'run' && node.entry) void alignment.showRun(node.entry.dir, false);
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('otfuse.runsFolder')) { runs.watch(); runs.refresh(); }
    }),
    ...registerCommands({ context, engines, jobs, runs, alignment, log }),
    ...registerHfCommands({ engines, jobs, log }),
  );
  void vscode.commands.executeCommand('setContext', 'otfuse.busy', false);
  log.info(`otfuse activated (${context.extensionMode === vscode.ExtensionMode.Test ? 'test' : 'normal'} mode)`);
  return { engines, jobs, runs, alignment, log };
}

export function deactivate(): void {
  host?.dispose();
  host = undefined;
}
