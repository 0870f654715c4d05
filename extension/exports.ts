// Exports of what the views show: heatmap/chart PNGs (made by the webview), a map as CSV or NPY, the accuracy
// table as CSV or Markdown. Each asks where to save (a sensible name in the run folder by default).
import * as vscode from 'vscode';
import fs from 'node:fs';
import path from 'node:path';
import { csvTable, encodeNpy, mapsPath, readRun } from '../worker/client';
import type { RunRecord } from '../worker/types';
import { MapsFile } from './safetensors';
import { measuredOn, onCalibration, roleOf, rowData } from './format';

async function target(suggested: string, filters: Record<string, string[]>): Promise<string | undefined> {
  const uri = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(suggested), filters });
  return uri?.fsPath;
}

async function save(suggested: string, filters: Record<string, string[]>, bytes: Uint8Array | string): Promise<string | null> {
  const file = await target(suggested, filters);
  if (!file) return null;
  fs.writeFileSync(file, bytes);
  void vscode.window.showInformationMessage(`otfuse: saved ${path.basename(file)}`, 'Reveal').then((c) => {
    if (c) void vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(file));
  });
  return file;
}

function defaultDir(): string {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd();
}

/** A PNG the webview rendered (heatmap with its colour bar, the overview chart, the loss curve). */
export function saveWebviewFile(suggestedName: string, bytes: Uint8Array): Promise<string | null> {
  const name = suggestedName.replace(/[^\w.-]+/g, '_');
  return save(path.join(defaultDir(), name), { 'PNG image': ['png'] }, bytes);
}

function recordOf(runDir: string): RunRecord {
  const r = readRun(runDir).record;
  if (!r) throw new Error(`${runDir}: run.json is not readable`);
  return r;
}

function readFullMap(runDir: string, tensor: string) {
  const file = mapsPath({ dir: runDir, record: recordOf(runDir) });
  if (!file) throw new Error(`${runDir}: no maps file`);
  return MapsFile.open(file).read(tensor);
}

const fileSafe = (s: string) => s.replace(/[^\w.-]+/g, '_');

export function mapCsv(rows: number, cols: number, data: Float32Array): string {
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) lines.push(Array.from(data.subarray(i * cols, (i + 1) * cols), (v) => String(v)).join(','));
  return lines.join('\n') + '\n';
}

export async function exportMap(runDir: string, tensor: string, format: 'csv' | 'npy'): Promise<string | null> {
  const { rows, cols, data } = readFullMap(runDir, tensor);
  const name = `${fileSafe(recordOf(runDir).name)}-${fileSafe(tensor)}.${format}`;
  const bytes = format === 'csv' ? mapCsv(rows, cols, data) : encodeNpy(data, [rows, cols]);
  return save(path.join(defaultDir(), name), format === 'csv' ? { CSV: ['csv'] } : { 'NumPy array': ['npy'] }, bytes);
}

/** The accuracy table with each row's role and the data it was measured on (name and N where run.json has it). */
export function accuracyTable(record: RunRecord, format: 'csv' | 'markdown'): string {
  const on = measuredOn(record);
  const calib = onCalibration(record);
  const rows = record.metrics.map((m) => {
    const d = rowData(m, record);
    return [
      m.label,
      roleOf(m, record),
      m.accuracy === undefined ? '' : (100 * m.accuracy).toFixed(2),
      m.loss === undefined ? '' : m.loss.toFixed(4),
      d?.name ?? '',
      d?.n === undefined ? '' : String(d.n),
      calib ? 'calibration' : d ? 'held-out' : '',
      m.data?.sha256 ?? '',
      m.file ?? '',
      // Causal LMs: e^loss over the predicted next tokens (lower is better); last, so existing columns keep their place.
      m.perplexity === undefined ? '' : m.perplexity.toFixed(4),
    ];
  });
  const lm = record.metrics.some((m) => m.perplexity !== undefined);
  // Formula cells (= + - @ …) neutralised by csvTable.
  if (format === 'csv')
    return csvTable(['model', 'role', 'accuracy_percent', 'loss', 'data', 'data_n', 'data_kind', 'data_sha256', 'file', 'perplexity'], rows);
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return (
    [
      `Accuracy of run **${esc(record.name)}** ${on ? `(measured ${esc(on)})` : ''}`.trim(),
      '',
      `| model | role | ${lm ? 'next-token accuracy' : 'accuracy'} | loss |${lm ? ' perplexity (lower is better) |' : ''} data (N) |`,
      `| --- | --- | ---: | ---: |${lm ? ' ---: |' : ''} --- |`,
      ...rows.map(
        (r) =>
          `| ${esc(r[0])} | ${r[1]} | ${r[2] ? `${r[2]} %` : '—'} | ${r[3] || '—'} |${lm ? ` ${r[9] || '—'} |` : ''} ${esc(r[4]) || '—'}${r[5] ? ` (${r[5]})` : ''} |`,
      ),
    ].join('\n') + '\n'
  );
}

export function exportAccuracy(runDir: string, format: 'csv' | 'markdown'): Promise<string | null> {
  const record = recordOf(runDir);
  const ext = format === 'csv' ? 'csv' : 'md';
  return save(
    path.join(defaultDir(), `${fileSafe(record.name)}-accuracy.${ext}`),
    format === 'csv' ? { CSV: ['csv'] } : { Markdown: ['md'] },
    accuracyTable(record, format),
  );
}
