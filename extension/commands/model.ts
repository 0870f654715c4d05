// Commands on a model or a run's model: Evaluate Model, Inspect Alignment Structure, Quick Finetune (finetune.ts).
import * as vscode from 'vscode';
import path from 'node:path';
import type { DataArg, EvaluateResult } from '../../worker/types';
import { pct } from '../format';
import type { Deps } from './deps';
import { finetune, type FinetuneOptions } from './finetune';
import { showError, trusted } from './notify';
import type { Pickers } from './pickers';

export function modelCommands(d: Deps, pickers: Pickers) {
  const alignmentDocs = new Map<string, string>();
  const alignmentProvider = vscode.workspace.registerTextDocumentContentProvider('otfuse-alignment', {
    provideTextDocumentContent: (u) => alignmentDocs.get(u.path) ?? '',
  });
  // Command handlers take (uri, uris, options): the second argument is the explorer's multi-selection, unused.
  return {
    evaluate: (uri?: vscode.Uri, _uris?: unknown, options?: { data?: DataArg; quiet?: boolean }) => evaluate(d, pickers, uri, options),
    inspectAlignment: (uri?: vscode.Uri) => inspectAlignment(d, pickers, alignmentDocs, uri),
    finetune: (target?: vscode.Uri | string, _uris?: unknown, options?: FinetuneOptions) => finetune(d, pickers, target, options),
    alignmentProvider,
  };
}

async function evaluate(d: Deps, pickers: Pickers, uri?: vscode.Uri, options: { data?: DataArg; quiet?: boolean } = {}): Promise<EvaluateResult | undefined> {
  if (!trusted('Evaluating')) return undefined;
  const model = uri?.fsPath ?? (await pickers.pickOne('Evaluate Model: choose a model'));
  if (!model) return undefined;
  const data = options.data ?? (await pickers.pickFile(`Evaluate ${path.basename(model)}: data`, 'otfuse.evalData', model));
  if (!data) return undefined;
  try {
    const result = await d.jobs.run(`Evaluating ${path.basename(model)}`, (ctx) =>
      d.engines.engine.evaluate({ model, data, provider: d.engines.provider(), limit: pickers.evalLimit() }, ctx),
    );
    const text = `${path.basename(model)}: accuracy ${pct(result.accuracy)}, loss ${result.loss.toFixed(4)} on ${result.samples} samples of ${path.basename(typeof data === 'string' ? data : data.path)} (${result.provider.used}, ${result.seconds.toFixed(1)} s)`;
    d.log.info(text);
    if (!options.quiet) void vscode.window.showInformationMessage(`otfuse: ${text}`);
    return result;
  } catch (err) {
    showError(d, `evaluating ${path.basename(model)}`, err, () => evaluate(d, pickers, uri, { ...options, data }));
    if (options.quiet) throw err;
    return undefined;
  }
}

async function inspectAlignment(d: Deps, pickers: Pickers, docs: Map<string, string>, uri?: vscode.Uri): Promise<string | undefined> {
  const model = uri?.fsPath ?? (await pickers.pickOne('Inspect Alignment Structure: choose a model'));
  if (!model) return undefined;
  try {
    const result = await d.engines.engine.inspect({ model, alignment: true, noSession: true });
    const a = result.alignment!;
    const text = [`# Alignment structure of ${model}`, `hidden ${a.hiddenSize} · layers ${a.layers} · heads ${a.heads} × ${a.headDim}`, '', a.text].join('\n');
    const docPath = `/${path.basename(model)}.alignment.txt`;
    docs.set(docPath, text);
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.from({ scheme: 'otfuse-alignment', path: docPath }));
    await vscode.window.showTextDocument(doc, { preview: true });
    return text;
  } catch (err) {
    showError(d, `inspecting ${path.basename(model)}`, err);
    return undefined;
  }
}
