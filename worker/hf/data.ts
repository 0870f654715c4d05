// Data that needs a model folder: a text file takes the tokenizer of the first Hugging Face model folder among
// the models of a request, an image folder its preprocessor_config.json — unless the data spec names one.
import path from 'node:path';
import { exists, isDirectory as isDir, pathKind, parseJsonText, readText } from '../io/read';
import type { DataArg, DatasetSpec } from '../types';
import { hfFolderOf } from './checkpoint';

const TEXT = /\.(jsonl|csv|txt)$/i;

/** The data argument with `tokenizer` / `preprocessor` filled in from the models when they are missing. */
export function attachModelFolder<T extends DataArg | undefined>(data: T, models: string[]): T {
  if (data === undefined) return data;
  const spec: DatasetSpec & { tokenizer?: string; preprocessor?: string } = typeof data === 'string' ? { path: data } : { ...data };
  const folders = models.map((m) => hfFolderOf(m)).filter((d): d is string => d !== undefined);
  if ((TEXT.test(spec.path) || TEXT.test(jsonSpecPath(spec.path))) && !spec.tokenizer && !jsonSpecHas(spec.path, 'tokenizer')) {
    const dir = folders.find((d) => exists(path.join(d, 'tokenizer.json')) || exists(path.join(d, 'vocab.txt')));
    if (dir) return { ...spec, tokenizer: dir } as unknown as T;
  }
  if (!spec.path.endsWith('.json') && isDir(spec.path) && !spec.preprocessor) {
    const dir = folders.find((d) => exists(path.join(d, 'preprocessor_config.json')));
    if (dir) return { ...spec, preprocessor: dir } as unknown as T;
  }
  return data;
}

/** The `path` a small .json data spec points to ('' when it is not one). */
function jsonSpecPath(file: string): string {
  const j = readSpec(file);
  return typeof j?.path === 'string' ? j.path : '';
}

function jsonSpecHas(file: string, field: string): boolean {
  return readSpec(file)?.[field] !== undefined;
}

function readSpec(file: string): Record<string, unknown> | undefined {
  if (!file.endsWith('.json')) return undefined;
  try {
    if (pathKind(file) !== 'file') return undefined;
    const j = parseJsonText(readText(file, { code: 'BAD_DATA', what: 'data spec', maxBytes: 64 * 1024 }), 'BAD_DATA', 'the data spec', file);
    return j && typeof j === 'object' ? (j as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
