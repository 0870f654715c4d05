// Which data a number was measured on, and which data a model was trained on: the identity of a data set (its
// content files, their sha256 and the sample window used), the DataRef run.json records, and the refusal to train
// on the data a run evaluates on (same real path or same content).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { OtfuseError } from '../errors';
import { openDataset, readJsonSpec, specFromArg } from '../data/dataset';
import type { DataArg, DataRef, FinetuneOptions, FinetuneResult } from '../types';
import { FINETUNE_DEFAULTS } from '../train/finetune';
import { sha256File } from './lineage';

/** The content behind a data argument: the files that hold its samples and labels (a JSON spec is followed to
 * them), the sha256 of that content, and the window of samples used. */
export interface DataIdentity {
  /** The path as given (a JSON spec stays the spec), absolute. */
  path: string;
  /** Real paths of the content files (data, then labels). */
  files: string[];
  sha256: string;
  offset: number;
  limit?: number;
}

const hashCache = new Map<string, { size: number; mtimeMs: number; sha256: string }>();

/** sha256 of a file (cached by real path, size and mtime), or of a folder: `relative-path sha256` lines of its
 * regular files in name order, recursively (an image folder). */
export function contentSha256(file: string): string {
  const real = fs.realpathSync(file);
  const st = fs.statSync(real);
  const hit = hashCache.get(real);
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit.sha256;
  const sha256 = st.isDirectory() ? folderSha256(real) : sha256File(real);
  hashCache.set(real, { size: st.size, mtimeMs: st.mtimeMs, sha256 });
  return sha256;
}

function folderSha256(dir: string): string {
  const lines: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p, `${rel}${e.name}/`);
      else if (e.isFile()) lines.push(`${rel}${e.name} ${sha256File(p)}\n`);
    }
  };
  walk(dir, '');
  return crypto.createHash('sha256').update(lines.join('')).digest('hex');
}

/** The content files of a data argument (a JSON spec followed to them), real paths, and its sample window. */
function dataFiles(arg: DataArg): Omit<DataIdentity, 'sha256'> {
  const given = specFromArg(arg);
  const spec = given.path.endsWith('.json') ? { ...readJsonSpec(given.path), ...withoutPath(given) } : given;
  const files = [spec.path, ...(spec.labels ? [spec.labels] : [])].map((f) => fs.realpathSync(path.resolve(f)));
  return { path: path.resolve(given.path), files, offset: spec.offset ?? 0, limit: spec.limit };
}

/** The identity of a data argument. Files that do not exist are left to the dataset reader to report. */
export function dataIdentity(arg: DataArg): DataIdentity {
  const id = dataFiles(arg);
  const hashes = id.files.map(contentSha256);
  const sha256 = hashes.length === 1 ? hashes[0] : crypto.createHash('sha256').update(hashes.join('\n')).digest('hex');
  return { ...id, sha256 };
}

/** Byte sizes of the content files (a folder: its regular files' sizes in name order): content that differs in
 * size is not hashed to be told apart. */
function sizes(files: string[]): string {
  const one = (f: string): string => {
    const st = fs.statSync(f);
    if (!st.isDirectory()) return String(st.size);
    return fs
      .readdirSync(f, { withFileTypes: true })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((e) => (e.isDirectory() || e.isFile() ? `${e.name}:${one(path.join(f, e.name))}` : ''))
      .join(',');
  };
  return files.map(one).join('|');
}

function withoutPath(spec: Exclude<DataArg, string>): Omit<Exclude<DataArg, string>, 'path'> {
  const { path: _p, ...rest } = spec;
  return rest;
}

/** A path as run.json stores it: relative to `base` (the run folder), absolute only when no relative path exists
 * (another drive). */
export function relativeTo(base: string, file: string): string {
  const rel = path.relative(base, path.resolve(file));
  return rel && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : path.resolve(file);
}

/** The DataRef of `arg` for run.json: its path relative to `base`, its content sha256 and the samples used. */
export function dataRef(arg: DataArg, n: number, base: string): DataRef {
  const id = dataIdentity(arg);
  return { path: relativeTo(base, id.path), sha256: id.sha256, n };
}

function overlaps(a: Omit<DataIdentity, 'sha256'>, b: Omit<DataIdentity, 'sha256'>): boolean {
  const end = (d: Omit<DataIdentity, 'sha256'>) => (d.limit === undefined ? Infinity : d.offset + d.limit);
  return a.offset < end(b) && b.offset < end(a);
}

/** How two data arguments are the same data (same real file, or same content), or undefined. Disjoint sample
 * windows of one file (offset/limit) are different data. */
export function sameData(a: DataArg, b: DataArg): string | undefined {
  try {
    const x = dataFiles(a);
    const y = dataFiles(b);
    if (!overlaps(x, y)) return undefined;
    if (x.files.length === y.files.length && x.files.every((f, i) => f === y.files[i])) return 'the same file';
    if (sizes(x.files) !== sizes(y.files)) return undefined;
    const sx = dataIdentity(a).sha256;
    return sx === dataIdentity(b).sha256 ? `the same content (sha256 ${sx.slice(0, 12)}…)` : undefined;
  } catch {
    return undefined; // unreadable: the dataset reader names the file when the job opens it
  }
}

/** Refuses to train on data the job evaluates on: BAD_USAGE (CLI exit 2) naming both files. `evaluation` lists
 * the data sets whose numbers the training would make meaningless, each with what it is called. */
export function refuseTrainingOnEvaluation(train: DataArg | undefined, evaluation: { data: DataArg | undefined; what: string }[]): void {
  if (train === undefined) return;
  for (const e of evaluation) {
    if (e.data === undefined) continue;
    const how = sameData(train, e.data);
    if (!how) continue;
    const name = (d: DataArg) => path.resolve(typeof d === 'string' ? d : d.path);
    throw new OtfuseError(
      'BAD_USAGE',
      `refusing to train on the ${e.what}: the training data ${name(train)} and the ${e.what} ${name(e.data)} are ${how}; ` +
        'numbers measured on data the model was trained on are no held-out result. Give separate evaluation data.',
      { file: name(train) },
    );
  }
}

/** Samples in a data set (opened and closed again; IDX/.npz read only their headers). */
export function datasetSize(arg: DataArg): number {
  const d = openDataset(arg);
  try {
    return d.size;
  } finally {
    d.close();
  }
}

/** What a finetune record says about where it came from: the training data (and the data it was evaluated on,
 * when any), the learning rate and seed used, the teachers by file name. */
export function finetuneProvenance(
  options: (FinetuneOptions & { data: DataArg; evalData?: DataArg }) | undefined,
  base: string,
): Pick<FinetuneResult, 'trainData' | 'evalData' | 'lr' | 'seed' | 'teachers' | 'at'> {
  if (!options) return {};
  const evalData = options.evalData;
  return {
    trainData: dataRef(options.data, datasetSize(options.data), base),
    ...(evalData !== undefined ? { evalData: dataRef(evalData, Math.min(options.evalLimit ?? Infinity, datasetSize(evalData)), base) } : {}),
    lr: options.lr ?? FINETUNE_DEFAULTS.lr,
    seed: options.seed ?? FINETUNE_DEFAULTS.seed,
    ...(options.teachers?.length ? { teachers: options.teachers.map((t) => path.basename(t)) } : {}),
    at: new Date().toISOString(),
  };
}
