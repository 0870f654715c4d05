// Editor-tab webviews: two runs side by side (recipes diffed, accuracy merged, the same layer's maps next to each
// other), one map large (zoom), and the recipe form that writes a `*.otfuse.json` (its fields come from the
// recipe JSON schema, so a new option appears here by itself).
import * as vscode from 'vscode';
import fs from 'node:fs';
import path from 'node:path';
import type { FuseRecipe, RecipeField, RunRecord, ViewKind } from '../contracts/protocol';
import type { RunStore } from './runStore';
import { readMap } from './alignmentView';
import { webviewHtml, webviewOptions } from './webviewHtml';
import { send, serve, type EventBody, type Handlers } from './webviewRpc';
import { saveWebviewFile } from './exports';

/** The recipe form's fields, from worker/fusion/recipe.schema.json. */
export function recipeFields(extensionPath: string): RecipeField[] {
  const schema = JSON.parse(fs.readFileSync(path.join(extensionPath, 'worker', 'fusion', 'recipe.schema.json'), 'utf8')) as {
    properties: Record<string, Record<string, unknown>>;
  };
  return Object.entries(schema.properties)
    .filter(([key]) => !key.startsWith('$'))
    .map(([key, p]) => ({
      key,
      type: Array.isArray(p.enum) ? 'string' : ((p.type as RecipeField['type']) ?? 'string'),
      ...(Array.isArray(p.enum) ? { enum: p.enum.map(String) } : {}),
      ...(typeof p.description === 'string' ? { description: p.description } : {}),
      ...(typeof p.minimum === 'number' ? { minimum: p.minimum } : typeof p.exclusiveMinimum === 'number' ? { minimum: p.exclusiveMinimum } : {}),
      ...(typeof p.maximum === 'number' ? { maximum: p.maximum } : {}),
      ...(p.default !== undefined ? { default: p.default } : {}),
    }));
}

export class Panels implements vscode.Disposable {
  private readonly open = new Set<vscode.WebviewPanel>();

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly store: RunStore,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  private panel(view: ViewKind, title: string, onReady: (post: (e: EventBody) => void) => void, handlers: Handlers = {}): vscode.WebviewPanel {
    const panel = vscode.window.createWebviewPanel(`otfuse.${view}`, title, vscode.ViewColumn.Active, {
      ...webviewOptions(this.context.extensionUri),
      retainContextWhenHidden: true,
    });
    panel.webview.html = webviewHtml(panel.webview, this.context.extensionUri, view, title);
    const post = (e: EventBody) => void send(panel.webview, e);
    const sub = serve(panel.webview, { ...handlers, ready: () => onReady(post), saveFile: (p) => saveWebviewFile(p.suggestedName, p.bytes) }, this.log);
    this.open.add(panel);
    panel.onDidDispose(() => {
      sub.dispose();
      this.open.delete(panel);
    });
    return panel;
  }

  openCompare(dirs: string[]): vscode.WebviewPanel {
    const entries = dirs.map((d) => this.store.get(d)).filter((e) => e.record);
    return this.panel(
      'compare',
      `Compare: ${entries.map((e) => e.record!.name).join(' ↔ ')}`,
      (post) => {
        post({ type: 'compare', runs: entries.map((e) => ({ runDir: e.dir, record: e.record! })) });
      },
      {
        getMap: (p) => {
          const e = entries.find((x) => x.dir === p.runDir);
          return e ? readMap(e, p.tensor, p.maxSide, this.log, p) : null;
        },
      },
    );
  }

  async openLarge(dir: string, tensor: string): Promise<vscode.WebviewPanel | undefined> {
    const entry = this.store.get(dir);
    const layer = entry.record?.layers.find((l) => l.tensor === tensor);
    if (!entry.record || !layer) return undefined;
    const map = await readMap(entry, tensor, 1024, this.log);
    if (!map) return undefined;
    return this.panel('large', `${layer.name} — ${entry.record.name}`, (post) =>
      post({ type: 'large', title: `${layer.name} (${layer.kind}) · ${layer.rows}×${layer.cols} · ${entry.record!.name}`, map }),
    );
  }

  openRecipeForm(options: { recipe?: FuseRecipe; run?: { dir: string; record: RunRecord } }): vscode.WebviewPanel {
    const fields = recipeFields(this.context.extensionPath);
    const run = options.run;
    return this.panel(
      'recipe',
      run ? `Re-run ${run.record.name}` : 'New otfuse recipe',
      (post) => {
        post({ type: 'recipeForm', fields, recipe: options.recipe ?? {}, models: run?.record.models });
      },
      {
        saveRecipe: async (p) => {
          const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd();
          const name = `${p.suggestedName.replace(/[^\w.-]+/g, '_') || 'recipe'}.otfuse.json`;
          const file = (
            await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(path.join(ws, name)), filters: { 'otfuse recipe': ['otfuse.json', 'json'] } })
          )?.fsPath;
          if (!file) return null;
          // (*.otfuse.json files are validated against the schema by the extension's jsonValidation: no $schema needed)
          fs.writeFileSync(file, JSON.stringify(p.recipe, null, 2) + '\n');
          if (p.fuse && run) {
            const r = run.record;
            void vscode.commands.executeCommand('otfuse.fuseModels', undefined, undefined, {
              models: r.models,
              anchor: r.anchor,
              data: r.data,
              recipe: file,
              ...(r.evalIsCalibration || r.evalData === undefined ? { skipEval: r.evalData === undefined } : { evalData: r.evalData }),
            });
          } else {
            void vscode.window.showInformationMessage(`otfuse: recipe saved to ${path.basename(file)}`, 'Open', 'Fuse with it').then((c) => {
              if (c === 'Open') void vscode.window.showTextDocument(vscode.Uri.file(file!));
              else if (c) {
                void this.context.workspaceState.update('otfuse.preset', file);
                void vscode.commands.executeCommand('otfuse.fuseModels');
              }
            });
          }
          return file;
        },
      },
    );
  }

  dispose(): void {
    for (const p of this.open) p.dispose();
  }
}
