// Messages with the actions that help: errors name what failed and offer the log, provider failures offer
// "Open Settings" and "Retry", trust problems offer "Manage Workspace Trust".
import * as vscode from 'vscode';
import type { Deps } from './deps';
import { providerReason } from '../format';

export function showError(d: Deps, what: string, err: unknown, retry?: () => unknown): void {
  const e = err as { code?: string; message?: string };
  if (e?.code === 'CANCELLED') {
    void vscode.window.showInformationMessage(`otfuse: ${what} cancelled.`);
    return;
  }
  d.log.error(`${what}: ${e?.code ?? ''} ${e?.message ?? err}`);
  const message = (e?.message ?? String(err)).split('\n')[0].replace(/\s*Use --provider[^.]*\.?/, ''); // CLI advice means nothing here
  if (e?.code === 'PROVIDER') {
    const provider = d.engines.provider();
    const reason = message
      .replace(/^.*?is not available:\s*/, '')
      .replace(/^\w+: not used \(/, '')
      .replace(/\)?\.?\s*$/, '');
    const text = `otfuse: ${what} failed — the execution provider '${provider}' cannot run here (${providerReason(reason, provider)}). Choose another one, or 'auto', which falls back to the CPU.`;
    void vscode.window.showErrorMessage(text, 'Open Settings', 'Retry', 'Show Log').then((c) => {
      if (c === 'Open Settings') {
        // The notification closes with the click: offer Retry again once the settings are open.
        void vscode.commands
          .executeCommand('otfuse.openProviderSettings')
          .then(() => vscode.window.showInformationMessage(`otfuse: choose an execution provider ('auto' falls back to the CPU), then retry ${what}.`, 'Retry'))
          .then((again) => {
            if (again) void retry?.();
          });
      } else if (c === 'Retry') void retry?.();
      else if (c) d.log.show();
    });
    return;
  }
  const actions = retry ? ['Retry', 'Show Log'] : ['Show Log'];
  void vscode.window.showErrorMessage(`otfuse: ${what} failed — ${message}`, ...actions).then((c) => {
    if (c === 'Retry') void retry?.();
    else if (c) d.log.show();
  });
}

/** Running models executes them with ONNX Runtime: only in a trusted workspace (limited mode otherwise). */
export function trusted(what: string): boolean {
  if (vscode.workspace.isTrusted) return true;
  void vscode.window
    .showWarningMessage(`otfuse: ${what} needs a trusted workspace (it runs the model files with ONNX Runtime).`, 'Manage Workspace Trust')
    .then((c) => {
      if (c) void vscode.commands.executeCommand('workbench.trust.manage');
    });
  return false;
}
