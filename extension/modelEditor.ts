// Read-only custom editor for .onnx files: inputs/outputs, parameter count, lineage (what otfuse made it from),
// the detected alignment structure and actions (Evaluate, Fuse with…, Finetune). Viewing never starts an ONNX
// Runtime session, so a broken execution provider setting cannot break it.
import * as vscode from 'vscode';
import type { EvaluateResult } from '../worker/types';
import type { RunAction } from '../contracts/protocol';
import type { EngineHost } from './engineHost';
import { webviewHtml, webviewOptions } from './webviewHtml';
import { send, serve } from './webviewRpc';
import { hfModelFolder } from './hf';
import path from 'node:path';

const COMMANDS: Partial<Record<RunAction, string>> = {
  evaluate: 'otfuse.evaluateModel',
  fuseWith: 'otfuse.fuseModels',
  finetune: 'otfuse.quickFinetune',
  inspectAlignment: 'otfuse.inspectAlignment',
};

export class ModelEditorProvider implements vscode.CustomReadonlyEditorProvider {
  static readonly viewType = 'otfuse.modelEditor';

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly engines: EngineHost,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => undefined };
  }

  resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): void {
    const uri = document.uri;
    panel.webview.options = webviewOptions(this.context.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, this.context.extensionUri, 'model', uri.fsPath);
    const sub = serve(
      panel.webview,
      {
        ready: () => this.load(uri, panel),
        action: async (p) => {
          if (p.action === 'retry') {
            await this.load(uri, panel);
            return true;
          }
          const command = COMMANDS[p.action];
          if (!command) return false;
          // Fuse with…: this model is one of the models (the picker explains that a second one is needed). A
          // model.safetensors stands for its Hugging Face folder.
          const target = vscode.Uri.file(hfModelFolder(uri.fsPath) ?? uri.fsPath);
          const result = await vscode.commands.executeCommand<EvaluateResult | undefined>(command, target, [target]);
          if (p.action === 'evaluate' && result) {
            const data = this.context.workspaceState.get<string>('otfuse.evalData') ?? '';
            void send(panel.webview, { type: 'evaluation', result, data });
          }
          return true;
        },
      },
      this.log,
    );
    panel.onDidDispose(() => sub.dispose());
  }

  private async load(uri: vscode.Uri, panel: vscode.WebviewPanel): Promise<void> {
    const post = (m: Parameters<typeof send>[1]) => void send(panel.webview, m);
    // A Hugging Face model.safetensors is shown as its folder (the model; named by the folder).
    const model = hfModelFolder(uri.fsPath) ?? uri.fsPath;
    if (model !== uri.fsPath) panel.title = `${path.basename(model)} (Hugging Face)`;
    try {
      const inspect = await this.engines.engine.inspect({ model, alignment: true, noSession: true });
      post({ type: 'model', file: model, inspect });
    } catch (first) {
      // Alignment analysis may fail for a structure the engine cannot place: still show the model itself.
      try {
        const inspect = await this.engines.engine.inspect({ model, noSession: true });
        post({ type: 'model', file: model, inspect, alignmentError: (first as Error).message });
      } catch (err) {
        post({ type: 'model', file: model, error: (err as Error).message, errorActions: ['retry'] });
      }
    }
  }
}
