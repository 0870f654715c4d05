// Registers every command, by family: fusion (fuse.ts), models (model.ts), runs (runs.ts). Each command returns
// its result so that tests (and other extensions) can use it.
import * as vscode from 'vscode';
import type { Deps } from './deps';
import { fuseCommands } from './fuse';
import { mergeCommands } from './merge';
import { modelCommands } from './model';
import { runCommands } from './runs';
import { Pickers } from './pickers';

export type { Deps } from './deps';
export type { FuseOptions } from './fuse';
export type { MergeOptions } from './merge';

export function registerCommands(d: Deps): vscode.Disposable[] {
  const pickers = new Pickers(d);
  const merging = mergeCommands(d, pickers);
  const fusion = fuseCommands(d, pickers, merging.offerMerge);
  const models = modelCommands(d, pickers);
  const runs = runCommands(d, pickers);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- command handlers take whatever VS Code passes
  const reg = (id: string, fn: (...args: any[]) => unknown) => vscode.commands.registerCommand(id, fn);
  return [
    models.alignmentProvider,
    reg('otfuse.fuseModels', fusion.fuse),
    reg('otfuse.mergeModels', merging.merge),
    reg('otfuse.rerunWithEdits', fusion.rerunWithEdits),
    reg('otfuse.newRecipe', () => d.panels.openRecipeForm({})),
    reg('otfuse.evaluateModel', models.evaluate),
    reg('otfuse.inspectAlignment', models.inspectAlignment),
    reg('otfuse.quickFinetune', models.finetune),
    reg('otfuse.openRun', runs.openRun),
    reg('otfuse.compareRuns', runs.compare),
    reg('otfuse.openMapLarge', runs.openMapLarge),
    reg('otfuse.exportMapCsv', runs.exportMapCsv),
    reg('otfuse.exportMapNpy', runs.exportMapNpy),
    reg('otfuse.exportAccuracyCsv', runs.exportAccuracyCsv),
    reg('otfuse.exportAccuracyMarkdown', runs.exportAccuracyMarkdown),
    reg('otfuse.cancelRun', async (arg?: { confirm?: boolean }) => {
      if (arg?.confirm && d.jobs.busy) {
        const titles = d.jobs.titles().join(', ');
        const ok = await vscode.window.showWarningMessage(`Cancel ${titles}?`, { modal: true, detail: 'The work done so far is discarded.' }, 'Cancel Run');
        if (ok !== 'Cancel Run') return 0;
      }
      const n = d.jobs.cancelAll();
      if (!n) void vscode.window.showInformationMessage('otfuse: nothing is running.');
      return n;
    }),
    reg('otfuse.refreshRuns', () => d.store.notify()),
    reg('otfuse.reevaluateRun', runs.reevaluate),
    reg('otfuse.revealFusedModel', runs.reveal),
    reg('otfuse.deleteRun', runs.deleteRun),
    reg('otfuse.showLog', () => d.log.show()),
    reg('otfuse.restartWorker', () => d.engines.restart()),
    reg('otfuse.openProviderSettings', () => vscode.commands.executeCommand('workbench.action.openSettings', 'otfuse.executionProvider')),
  ];
}
