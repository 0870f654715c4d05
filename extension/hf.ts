// Hugging Face folders in the editor: Fuse Models on two or more selected HF model folders (or their
// model.safetensors files), Convert to ONNX on one, and Save as Hugging Face Folder on a run. The engine does the
// work (engine.importHf / engine.exportHf); this file only asks the questions.
import * as vscode from 'vscode';
import fs from 'node:fs';
import path from 'node:path';
import type { EngineHost } from './engineHost';
import type { JobRunner } from './jobs';
import { readRun, runPath } from '../worker/client';
import { refusePartialHf } from './partialExport';

interface Deps {
  engines: EngineHost;
  jobs: JobRunner;
  log: vscode.LogOutputChannel;
}

/** The HF model folder a path names (the folder, or its model.safetensors / shard index), or undefined. */
export function hfModelFolder(p: string): string | undefined {
  let dir = p;
  try {
    if (!fs.statSync(p).isDirectory()) dir = /(^|[\\/])model(-\d+-of-\d+)?\.safetensors$|\.safetensors\.index\.json$/.test(p) ? path.dirname(p) : '';
  } catch {
    return undefined;
  }
  if (!dir || !fs.existsSync(path.join(dir, 'config.json'))) return undefined;
  return fs.existsSync(path.join(dir, 'model.safetensors')) || fs.existsSync(path.join(dir, 'model.safetensors.index.json')) ? dir : undefined;
}

const EXCLUDE_DIRS = '**/{node_modules,.git,.otfuse,.e2e,dist,dist-test,out}/**';

/** The workspace's Hugging Face model folders (config.json + model.safetensors or its shard index). */
export async function findHfFolders(): Promise<string[]> {
  const found = await vscode.workspace.findFiles('**/{model.safetensors,model.safetensors.index.json}', EXCLUDE_DIRS, 200);
  return [...new Set(found.map((u) => hfModelFolder(u.fsPath)).filter((f): f is string => !!f))].sort();
}

/** Keeps the context key `otfuse.hfFolders` (the HF model folders' paths) current, so that the Explorer offers
 * Fuse Models on such a folder, and only there. */
function trackHfFolders(): vscode.Disposable[] {
  let timer: NodeJS.Timeout | undefined;
  const update = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      void findHfFolders().then((folders) =>
        vscode.commands.executeCommand('setContext', 'otfuse.hfFolders', [...folders, ...folders.map((f) => vscode.Uri.file(f).path)]),
      );
    }, 300);
  };
  update();
  const watcher = vscode.workspace.createFileSystemWatcher('**/{model.safetensors,model.safetensors.index.json,config.json}');
  return [watcher, watcher.onDidCreate(update), watcher.onDidDelete(update), { dispose: () => clearTimeout(timer) }];
}

export function registerHfCommands(d: Deps): vscode.Disposable[] {
  const fail = (what: string, err: unknown) => {
    const e = err as { code?: string; message?: string };
    if (e?.code === 'CANCELLED') return;
    d.log.error(`${what}: ${e?.code ?? ''} ${e?.message ?? err}`);
    void vscode.window.showErrorMessage(`otfuse: ${what} failed — ${e?.message ?? err}`, 'Show Log').then((c) => {
      if (c) d.log.show();
    });
  };

  /** Explorer selection of HF folders / safetensors files → Fuse Models with those folders. */
  async function fuseHf(uri?: vscode.Uri, uris?: vscode.Uri[], options?: object): Promise<unknown> {
    const picked = (uris?.length ? uris : uri ? [uri] : []).map((u) => u.fsPath);
    const folders = [...new Set(picked.map(hfModelFolder).filter((f): f is string => !!f))];
    const notHf = picked.filter((p) => !hfModelFolder(p) && !p.endsWith('.onnx'));
    if (notHf.length) {
      void vscode.window.showWarningMessage(
        `otfuse: not a Hugging Face model folder (config.json + model.safetensors): ${notHf.map((p) => path.basename(p)).join(', ')}`,
      );
      return undefined;
    }
    const models = [...folders, ...picked.filter((p) => p.endsWith('.onnx'))];
    // Fuse Models takes it from here (anchor, data, preset prompts unless `options` answers them).
    return vscode.commands.executeCommand(
      'otfuse.fuseModels',
      undefined,
      models.map((m) => vscode.Uri.file(m)),
      options,
    );
  }

  async function convertToOnnx(uri?: vscode.Uri): Promise<string | undefined> {
    const folder = uri ? hfModelFolder(uri.fsPath) : undefined;
    if (!folder) {
      void vscode.window.showWarningMessage('otfuse: choose a Hugging Face model folder (config.json + model.safetensors).');
      return undefined;
    }
    const target = await vscode.window.showSaveDialog({
      defaultUri: vscode.Uri.file(`${folder}.onnx`),
      filters: { 'ONNX model': ['onnx'] },
      title: 'Convert to ONNX',
    });
    if (!target) return undefined;
    try {
      const r = await d.jobs.run(`Converting ${path.basename(folder)}`, () => d.engines.engine.importHf({ model: folder, output: target.fsPath }));
      d.log.info(`${folder} → ${r.output} (${r.architecture}, ${r.parameters} parameters, ${r.dtypes})`);
      void vscode.window.showInformationMessage(`otfuse: wrote ${path.basename(r.output)} (${r.architecture})`);
      return r.output;
    } catch (err) {
      fail('conversion', err);
      return undefined;
    }
  }

  /** Run (tree item, folder or path) → HF folder shaped like the anchor (or a chosen HF folder). */
  async function saveRunAsHf(
    arg?: unknown,
    _b?: unknown,
    options: { output?: string; like?: string; model?: 'fused' | 'finetuned' } = {},
  ): Promise<string | undefined> {
    const dir = arg instanceof vscode.Uri ? arg.fsPath : typeof arg === 'string' ? arg : (arg as { entry?: { dir: string } } | undefined)?.entry?.dir;
    const record = dir ? readRun(dir).record : undefined;
    if (!dir || !record) {
      void vscode.window.showWarningMessage('otfuse: choose a run in the Runs view.');
      return undefined;
    }
    const fused = runPath(dir, record.fusedModel)!;
    const finetuned = record.finetune?.output && fs.existsSync(runPath(dir, record.finetune.output)!) ? runPath(dir, record.finetune.output)! : undefined;
    let model = options.model === 'finetuned' && finetuned ? finetuned : fused;
    // A partial fusion has no Hugging Face form: the reason and the ONNX model, before any prompt.
    if (refusePartialHf(dir, record, model, options.output !== undefined)) return undefined;
    if (!options.model && finetuned) {
      const pick = await vscode.window.showQuickPick(
        [
          { label: 'Fused model', file: fused },
          { label: 'Fused + finetuned model', file: finetuned },
        ],
        { title: 'Save as Hugging Face Folder: which model' },
      );
      if (!pick) return undefined;
      model = pick.file;
    }
    let like = options.like ?? (record.anchor ? hfModelFolder(record.anchor) : undefined);
    if (!like) {
      const chosen = await vscode.window.showOpenDialog({
        canSelectFolders: true,
        canSelectFiles: false,
        title: 'A Hugging Face folder of the same architecture (layout, dtype, config and tokenizer to use)',
      });
      like = chosen?.[0] ? hfModelFolder(chosen[0].fsPath) : undefined;
      if (!like) return undefined;
    }
    let output = options.output;
    if (!output) {
      const base = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? path.dirname(dir);
      output = await vscode.window.showInputBox({ title: 'Save as Hugging Face Folder', prompt: 'Output folder', value: path.join(base, `${record.name}-hf`) });
      if (!output) return undefined;
    }
    try {
      const out = output;
      const r = await d.jobs.run(`Saving ${record.name} as a Hugging Face folder`, () =>
        d.engines.engine.exportHf({ model, like: like!, output: out, force: options.output !== undefined }),
      );
      d.log.info(`${model} → ${r.output}: ${r.files.join(', ')}`);
      if (!options.output) {
        void vscode.window.showInformationMessage(`otfuse: saved ${path.basename(r.output)} (${r.tensors} tensors)`, 'Reveal').then((c) => {
          if (c) void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(path.join(r.output, 'README.md')));
        });
      }
      return r.output;
    } catch (err) {
      fail('saving as a Hugging Face folder', err);
      if (options.output) throw err;
      return undefined;
    }
  }

  return [
    ...trackHfFolders(),
    vscode.commands.registerCommand('otfuse.fuseHfModels', fuseHf),
    vscode.commands.registerCommand('otfuse.convertHfToOnnx', convertToOnnx),
    vscode.commands.registerCommand('otfuse.saveRunAsHf', saveRunAsHf),
  ];
}
