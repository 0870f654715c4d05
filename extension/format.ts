// Small text helpers shared by the tree, notifications and commands.
import path from 'node:path';
import type { DataArg, ModelMetrics, RunRecord } from '../worker/types';

export function pct(x: number | undefined): string {
  return x === undefined || Number.isNaN(x) ? '—' : `${(100 * x).toFixed(2)}%`;
}

/** The accuracy a run is summarised by: the finetuned fused model, else the fused (or merged) model (by role). */
export function mainAccuracy(record: RunRecord): number | undefined {
  const pick = (role: string) => record.metrics.find((x) => x.role === role && !x.seeds && x.accuracy !== undefined);
  const m = pick('finetuned') ?? pick('fused') ?? pick('merged') ?? record.metrics.find((x) => x.accuracy !== undefined);
  return m?.accuracy;
}

export function dataName(d: DataArg | undefined): string | undefined {
  const p = typeof d === 'string' ? d : d?.path;
  return typeof p === 'string' && p ? path.basename(p) : undefined;
}

/** Measured on the calibration data: flagged so, or rows without evaluation data recorded (a run fused with
 * "Skip evaluation" whose finetune measured on the calibration data). */
export function onCalibration(record: RunRecord): boolean {
  return !!record.evalIsCalibration || (record.evalData === undefined && record.data !== undefined && record.metrics.length > 0);
}

/** "on fmnist-test-2k.json" or "on calib200.npz (calibration data!)". */
export function measuredOn(record: RunRecord): string {
  const name = dataName(record.evalData ?? record.data);
  if (!name) return '';
  return onCalibration(record) ? `on ${name} — calibration data, not held out` : `on ${name}`;
}

/** A metric row's typed provenance (run.json `role` and `data`, written by engines that record them). */
export type MetricRole = 'parent' | 'anchor' | 'vanilla' | 'fused' | 'finetuned' | 'ensemble' | 'baseline';
type Provenanced = ModelMetrics & { role?: MetricRole; data?: { path: string; sha256: string; n: number } };

/** The row's role: run.json's `role` when present; for older run.json files, derived as today from the label. */
export function roleOf(m: ModelMetrics, record: RunRecord): MetricRole {
  const typed = (m as Provenanced).role;
  if (typed) return typed;
  if (m.file && record.models.includes(m.file)) return m.file === record.anchor ? 'anchor' : 'parent';
  if (/^anchor\+finetune/i.test(m.label)) return 'baseline';
  if (/finetune/i.test(m.label)) return 'finetuned';
  if (/^ot$/i.test(m.label)) return 'fused';
  if (/vanilla/i.test(m.label)) return 'vanilla';
  if (/ensemble/i.test(m.label)) return 'ensemble';
  return 'baseline';
}

/** The data a row was measured on: its own `data` record, else the run's evaluation data (N unknown). */
export function rowData(m: ModelMetrics, record: RunRecord): { name: string; n?: number; sha256?: string } | undefined {
  const d = (m as Provenanced).data;
  if (d?.path) return { name: path.basename(d.path), n: d.n, sha256: d.sha256 };
  const name = dataName(record.evalData ?? record.data);
  return name ? { name } : undefined;
}

/** The fused model's accuracy (the `fused` row; not the last row, which is often the ensemble). */
export function fusedAccuracy(record: RunRecord): number | undefined {
  return record.metrics.find((m) => roleOf(m, record) === 'fused')?.accuracy;
}

/** Run names as shown: a name several runs share gets its date and time (runs made within a minute: the folder). */
export function uniqueNames<T extends { dir: string; record?: RunRecord }>(entries: T[]): Map<string, string> {
  const out = new Map<string, string>();
  const count = (key: (e: T) => string) => {
    const n = new Map<string, number>();
    for (const e of entries) n.set(key(e), (n.get(key(e)) ?? 0) + 1);
    return n;
  };
  const name = (e: T) => e.record?.name ?? path.basename(e.dir);
  const stamp = (e: T) => (e.record ? new Date(e.record.createdAt).toISOString().slice(0, 16).replace('T', ' ') : '');
  const byName = count(name);
  const byStamp = count((e) => `${name(e)} ${stamp(e)}`);
  for (const e of entries) {
    const n = name(e);
    if ((byName.get(n) ?? 0) < 2) out.set(e.dir, n);
    else if ((byStamp.get(`${n} ${stamp(e)}`) ?? 0) < 2) out.set(e.dir, `${n} (${stamp(e)})`);
    else out.set(e.dir, `${n} (${path.basename(e.dir)})`);
  }
  return out;
}

/** A provider failure in the user's words: ONNX Runtime's C++ source paths and line numbers (a WebGPU adapter
 * that cannot start reports one) become "the <provider> execution provider could not start here". */
export function providerReason(reason: string, provider: string): string {
  const internal = /[\w/\\.-]+\.(cc|cpp|h|hpp)(:\d+)?|onnxruntime[\\/]core|\bstd::|0x[0-9a-f]{6,}/i;
  if (!internal.test(reason)) return reason.slice(0, 140);
  const what = /adapter|gpu|device/i.test(reason) ? 'found no usable GPU adapter' : 'could not start';
  return `the ${provider} execution provider ${what} on this machine (details in the otfuse log)`;
}
