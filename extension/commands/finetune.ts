// Quick Finetune: a run's fused model into the run (with the anchor finetuned the same way as the baseline), or a
// model file into a finetuned copy next to it.
import * as vscode from 'vscode';
import fs from 'node:fs';
import path from 'node:path';
import type { DataArg, FinetuneResult, RunRecord } from '../../worker/types';
import { dataPath, refuseTrainingOnEval } from '../dataIdentity';
import { runPath } from '../../worker/client';
import { measuredOn, pct, runTrainedOn } from '../format';
import type { Deps } from './deps';
import { showError, trusted } from './notify';
import { SKIP_EVALUATION, trainingSets, USE_CALIBRATION, type Pickers } from './pickers';

export interface FinetuneOptions {
  data?: DataArg;
  evalData?: DataArg;
  epochs?: number;
  baseline?: boolean;
  quiet?: boolean;
}

/** On a run: finetunes its fused model into the run through the engine (ot+finetune row, and the anchor
 * finetuned the same way as the baseline row unless otfuse.finetuneBaseline is off). On a model file: a
 * finetuned copy next to it. */
export async function finetune(d: Deps, pickers: Pickers, target?: vscode.Uri | string, options: FinetuneOptions = {}): Promise<FinetuneResult | undefined> {
  if (!trusted('Finetuning')) return undefined;
  const p =
    typeof target === 'string' ? target : target instanceof vscode.Uri ? target.fsPath : (target as { entry?: { dir: string } } | undefined)?.entry?.dir;
  const runDir = p && fs.existsSync(path.join(p, 'run.json')) ? p : undefined;
  if (runDir) return finetuneRun(d, pickers, runDir, options);
  const model = p?.endsWith('.onnx') ? p : p ? undefined : await pickers.pickOne('Quick Finetune: choose a model');
  if (!model) return undefined;
  if (!model.endsWith('.onnx')) {
    // (The picker also lists Hugging Face folders; a finetuned copy is written next to an .onnx file.)
    void vscode.window.showWarningMessage(
      `otfuse: Quick Finetune writes a finetuned copy next to an .onnx model; convert ${path.basename(model)} to ONNX first, or finetune a run.`,
    );
    return undefined;
  }
  const data = options.data ?? (await pickers.pickFile(`Quick Finetune ${path.basename(model)}: training data`, 'otfuse.trainData', model));
  if (!data) return undefined;
  const evalData =
    options.evalData ??
    (await pickers.pickFile(`Quick Finetune ${path.basename(model)}: evaluation data (held out, not the training data)`, 'otfuse.evalData', model, [
      dataPath(data),
    ]));
  if (!evalData) return undefined;
  const output = model.replace(/\.onnx$/, '.finetuned.onnx');
  try {
    const result = await d.jobs.run(`Finetuning ${path.basename(model)}`, async (ctx) => {
      await refuseTrainingOnEval(data, evalData);
      return d.engines.engine.finetune({ model, data, evalData, output, epochs: options.epochs, provider: d.engines.provider() }, ctx);
    });
    const last = result.evals[result.evals.length - 1];
    const text = `finetuned ${path.basename(model)} → ${path.basename(output)}: ${result.steps} steps${last ? `, accuracy ${pct(last.accuracy)}` : ''}`;
    d.log.info(text);
    if (!options.quiet)
      void vscode.window.showInformationMessage(`otfuse: ${text}`, 'Open Model').then((c) => {
        if (c) void vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(output), 'otfuse.modelEditor');
      });
    return result;
  } catch (err) {
    showError(d, `finetuning ${path.basename(model)}`, err, () => finetune(d, pickers, target, { ...options, data, evalData }));
    if (options.quiet) throw err;
    return undefined;
  }
}

async function finetuneRun(d: Deps, pickers: Pickers, runDir: string, options: FinetuneOptions): Promise<FinetuneResult | undefined> {
  const record = d.store.get(runDir).record;
  if (!record) return undefined;
  if (d.jobs.isRunBusy(runDir)) {
    void vscode.window.showWarningMessage(`otfuse: a job is already running on ${record.name}; wait for it or cancel it.`, 'Cancel Run').then((c) => {
      if (c) void vscode.commands.executeCommand('otfuse.cancelRun');
    });
    return undefined;
  }
  const fused = runPath(runDir, record.fusedModel);
  // Never offered for training: the data the run's numbers are measured on, and its calibration data.
  const data =
    options.data ??
    (await pickers.pickFile(`Quick Finetune ${record.name}: training data (not the run's evaluation data)`, 'otfuse.trainData', fused, [
      dataPath(record.evalData),
      dataPath(record.data),
    ]));
  if (!data) return undefined;
  const evalData = options.evalData ?? record.evalData ?? (await askEvalData(pickers, record, fused, data));
  if (!evalData) return undefined;
  const baseline = options.baseline ?? vscode.workspace.getConfiguration('otfuse').get<boolean>('finetuneBaseline', true);
  // The run's parents as distillation teachers (setting otfuse.finetuneTeachers; the engine's distillation
  // finetune reads FinetuneRequest.teachers and reports `distill` in its result).
  const teachers = vscode.workspace.getConfiguration('otfuse').get<boolean>('finetuneTeachers', true) ? record.models : undefined;
  try {
    const result = await d.jobs.run(
      `Finetuning ${record.name}`,
      async (ctx) => {
        // The same real file or a byte-identical copy: refused before any work, both files named in the panel.
        await refuseTrainingOnEval(data, evalData);
        return d.engines.engine.finetuneRun(
          {
            runDir,
            data,
            evalData,
            epochs: options.epochs,
            baseline,
            provider: d.engines.provider(),
            ...(teachers ? { teachers } : {}),
          },
          ctx,
        );
      },
      // Last time's finetune of this run (twice: the anchor is finetuned the same way as the baseline).
      { runDir, expectedSeconds: record.finetune ? record.finetune.seconds * (baseline ? 2 : 1) : undefined },
    );
    const distilled = (result.finetune as { distill?: unknown }).distill !== undefined;
    if (teachers && !distilled) d.log.warn('otfuse.finetuneTeachers is on, but this engine has no distillation finetune: trained on the labels only');
    d.store.notify(runDir);
    if (d.alignment.currentRun !== runDir) await d.alignment.showRun(runDir, false);
    const row = (role: 'finetuned' | 'baseline') =>
      result.record.metrics.find((m) => m.role === role && !m.seeds && (role === 'finetuned' || m.start === 'anchor'))?.accuracy;
    const text = `${record.name}: ot+finetune ${pct(row('finetuned'))}${row('baseline') !== undefined ? ` vs anchor+finetune ${pct(row('baseline'))}` : ''} ${measuredOn(result.record)} (${result.finetune.steps} steps${teachers ? (distilled ? ', distilled from the parents' : ', teachers ignored: no distillation in this engine') : ''}${trunkNote(result.finetune.trunkDistill)})`;
    d.log.info(`finetuned ${text}`);
    if (!options.quiet)
      void vscode.window.showInformationMessage(`otfuse: ${text}`, 'Open Run', 'Export Table').then((c) => {
        if (c === 'Open Run') void vscode.commands.executeCommand('otfuse.openRun', runDir);
        else if (c) void vscode.commands.executeCommand('otfuse.exportAccuracyMarkdown', runDir);
      });
    return result.finetune;
  } catch (err) {
    showError(d, `finetuning ${record.name}`, err, () => finetuneRun(d, pickers, runDir, { ...options, data, evalData }));
    if (options.quiet) throw err;
    return undefined;
  }
}

/** The run was fused with "Skip evaluation": ask what to measure the finetune on (held out first; the calibration
 * data only as a labelled choice, never silently). */
async function askEvalData(pickers: Pickers, record: RunRecord, fused: string | undefined, train: DataArg): Promise<DataArg | undefined> {
  const calibration = dataPath(record.data);
  const trainPath = dataPath(train)!;
  const trained = trainingSets(await pickers.candidateFiles(), [...runTrainedOn(record), [trainPath, 'the training data of this finetune']]);
  const choice = await pickers.pickEvalData(fused ?? record.anchor, calibration ?? '', {
    title: `Quick Finetune ${record.name}: evaluation data (held out — the run was fused without evaluation)`,
    trainedOn: trained,
    skip: false,
  });
  if (choice === undefined || choice === SKIP_EVALUATION) return undefined;
  return choice === USE_CALIBRATION ? record.data : choice;
}

/** A partial run's trunk distillation, as the finetune's message mentions it (nothing for other runs). */
function trunkNote(t: { epochs: number; skipped?: string } | undefined): string {
  if (!t) return '';
  return t.skipped ? `; trunk distillation skipped: ${t.skipped}` : `; the partial model's trunk distilled first (${t.epochs} epochs)`;
}
