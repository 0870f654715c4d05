// Save as Hugging Face Folder on a partial fusion (issue 28): refused before any prompt, with the reason in words
// and the ONNX model offered instead (the engine refuses such a model too: worker/hf/export.ts).
import * as vscode from 'vscode';
import fs from 'node:fs';
import path from 'node:path';
import type { RunRecord } from '../worker/types';

/** Why this run's model cannot become a Hugging Face folder, or undefined (not a partial fusion). */
export function partialHfRefusal(record: RunRecord): string | undefined {
  const p = record.partial;
  if (!p || p.mergeLayers >= p.layers) return undefined;
  return (
    `${record.name} is a partial fusion (K = ${p.mergeLayers} of ${p.layers} blocks shared): each parent keeps its own upper blocks and head ` +
    'as branches on the shared trunk, which no Hugging Face model class computes, so it cannot be saved as a Hugging Face folder. ' +
    'The ONNX model runs as it is (ONNX Runtime, otfuse eval); fuse all blocks for a Hugging Face export.'
  );
}

/** Shows the refusal with "Reveal ONNX Model" and "Save ONNX Copy…" and returns true, or returns false when the
 * run's model can be exported. Programmatic callers (`throws`) get the reason as an UNSUPPORTED error. */
export function refusePartialHf(dir: string, record: RunRecord, model: string, throws: boolean): boolean {
  const why = partialHfRefusal(record);
  if (!why) return false;
  if (throws) throw Object.assign(new Error(why), { code: 'UNSUPPORTED' });
  void vscode.window.showErrorMessage(`otfuse: ${why}`, 'Reveal ONNX Model', 'Save ONNX Copy…').then(async (c) => {
    if (c === 'Reveal ONNX Model') void vscode.commands.executeCommand('otfuse.revealFusedModel', dir);
    else if (c) await saveOnnxCopy(record, model);
  });
  return true;
}

async function saveOnnxCopy(record: RunRecord, model: string): Promise<void> {
  const base = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? path.dirname(model);
  const target = await vscode.window.showSaveDialog({
    defaultUri: vscode.Uri.file(path.join(base, `${record.name}.onnx`)),
    filters: { 'ONNX model': ['onnx'] },
    title: 'Save ONNX Copy',
  });
  if (!target) return;
  // A temporary file renamed into place: never a half-written model under the chosen name.
  const tmp = `${target.fsPath}.tmp-${process.pid}`;
  try {
    fs.copyFileSync(model, tmp);
    fs.renameSync(tmp, target.fsPath);
    void vscode.window.showInformationMessage(`otfuse: saved ${path.basename(target.fsPath)}`);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    void vscode.window.showErrorMessage(`otfuse: could not save ${path.basename(target.fsPath)} — ${(err as Error).message}`);
  }
}
