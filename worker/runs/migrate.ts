// run.json records from older engines, brought to the current format once, on read (worker/runs/reader.ts): the
// fields the views rely on get their defaults, metric rows get the typed role derived from the display label they
// were written with (the only place that reads a label), and a single finetune becomes the start of the history.
// Never throws: a value of the wrong type is left as it is, for the schema to report.
import path from 'node:path';
import type { ModelMetrics } from '../types';
import { RUN_SCHEMA_VERSION } from './schema';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The role an old (label-only) metric row had, from its label, its file and the run's models (anchor first). */
export function roleFromLabel(label: string, file: unknown, models: string[]): Pick<ModelMetrics, 'role' | 'start' | 'model'> {
  const base = (p: string) => path.basename(p);
  const modelIndex = (name: string) => models.findIndex((m) => m === name || base(m) === name);
  const parent = (k: number): Pick<ModelMetrics, 'role' | 'model'> => ({ role: k === 0 ? 'anchor' : 'parent', model: k });
  if (/^ot$/i.test(label)) return { role: 'fused' };
  if (/^merged \(/.test(label)) return { role: 'merged' };
  if (/ \(base\)$/.test(label)) return { role: 'base' };
  if (/^vanilla$/i.test(label)) return { role: 'vanilla' };
  if (/^ensemble/i.test(label)) return { role: 'ensemble' };
  if (/^ot\+finetune\b/i.test(label)) return { role: 'finetuned', start: 'fused' };
  if (/^anchor\+finetune\b/i.test(label)) return { role: 'baseline', start: 'anchor', model: 0 };
  if (/^vanilla\+finetune\b/i.test(label)) return { role: 'baseline', start: 'vanilla' };
  const tuned = /^(.+?)\+finetune\b/.exec(label);
  if (tuned) {
    const k = modelIndex(tuned[1]);
    return { role: 'baseline', start: k === 0 ? 'anchor' : 'parent', ...(k >= 0 ? { model: k } : {}) };
  }
  const byFile = typeof file === 'string' ? models.indexOf(file) : -1;
  if (byFile >= 0) return parent(byFile);
  const byName = modelIndex(label.replace(/ \(anchor\)$/, ''));
  if (byName >= 0) return parent(byName);
  if (/\(anchor\)$/.test(label)) return { role: 'anchor' };
  // Labels this engine never wrote: kept, counted as a comparison row rather than as a parent or the result.
  return { role: 'baseline' };
}

function migrateRow(row: unknown, models: string[]): unknown {
  if (!isObject(row) || row.role !== undefined || typeof row.label !== 'string') return row;
  return { ...row, ...roleFromLabel(row.label, row.file, models) };
}

/** Brings a parsed run.json (any version) to the current format; `dir` and `mtime` give the defaults for a record
 * that lacks its id, name or date. */
export function migrateRunRecord(raw: Json, dir: string, mtime: Date): Json {
  const out: Json = { ...raw };
  const fill = (key: string, value: unknown) => {
    if (out[key] === undefined) out[key] = value;
  };
  fill('id', path.basename(dir));
  fill('name', path.basename(dir));
  fill('status', 'failed');
  fill('createdAt', mtime.toISOString());
  fill('models', []);
  fill('anchor', Array.isArray(out.models) && typeof out.models[0] === 'string' ? out.models[0] : '');
  fill('fusedModel', 'fused.onnx');
  fill('metrics', []);
  fill('layers', []);
  fill('recipe', {});
  fill('versions', {});
  fill('timings', {});
  const version = typeof raw.schemaVersion === 'number' ? raw.schemaVersion : 1;
  if (version < 2) {
    const models = Array.isArray(out.models) ? out.models.filter((m): m is string => typeof m === 'string') : [];
    if (Array.isArray(out.metrics)) out.metrics = out.metrics.map((m) => migrateRow(m, models));
    if (isObject(out.finetune) && out.finetunes === undefined) out.finetunes = [out.finetune];
    out.schemaVersion = RUN_SCHEMA_VERSION;
  }
  return out;
}
