// Read-only custom editor for .onnx files: inputs/outputs, parameter count, the detected alignment structure and
// actions (Evaluate, Fuse with…, Finetune) instead of binary noise.
import * as vscode from 'vscode';
import type { HostToWebview, WebviewToHost } from '../webview/protocol';
import type { EvaluateResult } from '../worker/types';
import type { EngineHost } from './engineHost';
import { webviewHtml, webviewOptions } from './webviewHtml';

export class ModelEditorProvider implements vscode.CustomReadonlyEditorProvider {
  static readonly viewType = 'otfuse.modelEditor';
  private readonly panels = new Map<string, Set<vscode.WebviewPanel>>();

  constructor(private readonly context: vscode.ExtensionContext, private readonly engines: EngineHost) {}

  private get extensionUri(): vscode.Uri { return this.context.extensionUri; }

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => undefined };
  }

  resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): void {
    const uri = document.uri;
    const key = uri.toString();
    if (!this.panels.has(key)) this.panels.set(key, new Set());
    this.panels.get(key)!.add(panel);
    panel.onDidDispose(() => this.panels.get(key)?.delete(panel));
    panel.webview.options = webviewOptions(this.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, 'model', uri.fsPath);
    panel.webview.onDidReceiveMessage(async (m: WebviewToHost) => {
      if (m.type === 'ready') await this.load(uri, panel);
      else if (m.type === 'action') {
        const command = { evaluate: 'otfuse.evaluateModel', fuseWith: 'otfuse.fuseModels', finetune: 'otfuse.quickFinetune', inspectAlignment: 'otfuse.inspectAlignment' }[m.action as string];
        if (!command) return;
        const result = await vscode.commands.executeCommand<EvaluateResult | undefined>(command, uri, [uri]);
        if (m.action === 'evaluate' && result) {
          const data = this.context.workspaceState.get<string>('otfuse.evalData') ?? '';
          void panel.webview.postMessage({ type: 'evaluation', result, data } satisfies HostToWebview);
        }
      }
    });
  }

  private async load(uri: vscode.Uri, panel: vscode.WebviewPanel): Promise<void> {
    const post = (m: HostToWebview) => void panel.webview.postMessage(m);
    const provider = this.engines.provider();
    try {
      const inspect = await this.engines.engine.inspect({ model: uri.fsPath, alignment: true, provider });
      post({ type: 'model', file: uri.fsPath, inspect });
    } catch (first) {
      // Alignment analysis may fail for a structure the engine cannot place: still show the model itself.
      try {
        const inspect = await this.engines.engine.inspect({ model: uri.fsPath, provider });
        post({ type: 'model', file: uri.fsPath, inspect, alignmentError: (first as Error).message });
      } catch (err) {
        post({ type: 'model', file: uri.fsPath, error: (err as Error).message });
      }
    }
  }
}
