// Text datasets from the workspace: a .jsonl (one {"text", "label"[, "text_pair"]} per line) or a .csv with a
// header row naming `text`, `label` [, `text_pair`] becomes input_ids / attention_mask / token_type_ids through the
// tokenizer of a model folder (tokenizer.json, or a vocab.txt-only folder). Labels are class indices or names
// (mapped with the model's config.json label2id).
import path from 'node:path';
import { OtfuseError } from '../errors';
import { excerpt, parseJsonText, READ_LIMITS, readText as readTextFile } from '../io/read';
import { registerDatasetFormat, type Dataset, type DatasetSpec, type FeedTensor } from './dataset';
import { loadTokenizer } from './tokenizer';
import { isCausalLmFolder, isCausalTextFile, openCausalText } from './causal';

export interface TextSpec extends DatasetSpec {
  /** A model folder (tokenizer.json or vocab.txt, config.json for label names), or a tokenizer.json / vocab.txt. */
  tokenizer?: string;
  /** Longest sequence in tokens, specials included (default: defaultMaxLength). */
  maxLength?: number;
}

interface TextRecord {
  text: string;
  pair?: string;
  label: unknown;
  line: number;
}

export const isTextFile = (file: string) => /\.(jsonl|csv|txt)$/i.test(file);

export function openTextDataset(spec: TextSpec): Dataset {
  const file = spec.path;
  if (!spec.tokenizer) {
    throw new OtfuseError(
      'BAD_DATA',
      'a text dataset needs a tokenizer: give --tokenizer MODEL_DIR, put "tokenizer" in a JSON data spec, or fuse/evaluate a Hugging Face model folder that has one',
      { file },
    );
  }
  const tokPath = path.resolve(path.dirname(file), spec.tokenizer);
  if (isCausalTextFile(file) && isCausalLmFolder(tokPath)) return openCausalText(file, tokPath, spec.maxLength);
  if (file.toLowerCase().endsWith('.txt'))
    throw new OtfuseError('BAD_DATA', 'a .txt dataset is text for a causal language model; this tokenizer is not a GPT-2 / Llama model folder', { file });
  const tok = loadTokenizer(tokPath);
  const records = file.toLowerCase().endsWith('.csv') ? readCsv(file) : readJsonl(file);
  if (records.length === 0) throw new OtfuseError('BAD_DATA', 'no samples', { file });
  const maxPos = tok.modelConfig?.max_position_embeddings;
  const cap = spec.maxLength ?? defaultMaxLength(tok.modelMaxLength, maxPos);
  const encoded = records.map((r) => tok.encode(r.text, r.pair, cap));
  const L = Math.max(...encoded.map((e) => e.ids.length));
  const n = records.length;
  const ids = new Int32Array(n * L).fill(tok.padId);
  const mask = new Int32Array(n * L);
  const types = new Int32Array(n * L);
  encoded.forEach((e, i) => {
    ids.set(e.ids, i * L);
    mask.fill(1, i * L, i * L + e.ids.length);
    types.set(e.typeIds, i * L);
  });
  const labels = Int32Array.from(records, (r) => labelIndex(r, tok.modelConfig, file));
  const arrays = { input_ids: ids, attention_mask: mask, token_type_ids: types };
  return {
    source: file,
    size: n,
    arrays: Object.keys(arrays).map((name) => ({ name, type: 'int64' as const, sampleShape: [L] })),
    labels,
    maxLength: cap,
    close() {},
    take(indices) {
      const feeds: Record<string, FeedTensor> = {};
      for (const [name, src] of Object.entries(arrays)) {
        const out = new BigInt64Array(indices.length * L);
        for (let b = 0; b < indices.length; b++) for (let k = 0; k < L; k++) out[b * L + k] = BigInt(src[indices[b] * L + k]);
        feeds[name] = { type: 'int64', data: out, dims: [indices.length, L] };
      }
      return { feeds, labels: Int32Array.from(indices, (i) => labels[i]), indices: Int32Array.from(indices) };
    },
  };
}

function labelIndex(r: TextRecord, config: Record<string, unknown> | undefined, file: string): number {
  const at = `line ${r.line}`;
  if (typeof r.label === 'number' && Number.isInteger(r.label) && r.label >= 0) return r.label;
  if (typeof r.label === 'string') {
    if (/^\d+$/.test(r.label)) return Number(r.label);
    const map = config?.label2id as Record<string, number> | undefined;
    if (map && typeof map === 'object' && Object.hasOwn(map, r.label) && typeof map[r.label] === 'number') return map[r.label];
    throw new OtfuseError('BAD_DATA', `${at}: label '${excerpt(r.label)}' is neither a class index nor a name in the model's config.json label2id`, { file });
  }
  throw new OtfuseError('BAD_DATA', `${at}: 'label' must be a class index or name, got ${excerpt(r.label)}`, { file });
}

function record(obj: Record<string, unknown>, line: number, file: string): TextRecord {
  const text = obj.text;
  if (typeof text !== 'string') throw new OtfuseError('BAD_DATA', `line ${line}: no string field 'text'`, { file });
  const pair = obj.text_pair;
  if (pair !== undefined && pair !== null && pair !== '' && typeof pair !== 'string')
    throw new OtfuseError('BAD_DATA', `line ${line}: 'text_pair' must be a string`, { file });
  if (obj.label === undefined || obj.label === null || obj.label === '') throw new OtfuseError('BAD_DATA', `line ${line}: no 'label'`, { file });
  return { text, pair: typeof pair === 'string' && pair !== '' ? pair : undefined, label: obj.label, line };
}

function readText(file: string): string {
  return readTextFile(file, { code: 'BAD_DATA', what: 'text dataset', maxBytes: READ_LIMITS.text });
}

function readJsonl(file: string): TextRecord[] {
  const out: TextRecord[] = [];
  readText(file)
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      const obj = parseJsonText(line, 'BAD_DATA', `line ${i + 1}`, file);
      if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new OtfuseError('BAD_DATA', `line ${i + 1} is not a JSON object`, { file });
      out.push(record(obj as Record<string, unknown>, i + 1, file));
    });
  return out;
}

/** RFC 4180 CSV: quoted fields may hold commas, quotes ("") and line breaks. */
export function parseCsv(text: string): { rows: string[][]; lines: number[] } {
  const rows: string[][] = [];
  const lines: number[] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === '\n') line++;
        field += c;
      }
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      if (row.length > 1 || row[0] !== '') {
        rows.push(row);
        lines.push(rowLine);
      }
      row = [];
      field = '';
      line++;
      rowLine = line;
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
    lines.push(rowLine);
  }
  return { rows, lines };
}

/** The header's column names when they look like names; otherwise only their count (never a file's raw bytes). */
function describeColumns(header: string[]): string {
  return header.every((h) => /^[\w .-]{0,32}$/.test(h))
    ? `columns: ${excerpt(header.join(', '), 120)}`
    : `${header.length} columns, none of them named like one`;
}

function readCsv(file: string): TextRecord[] {
  const { rows, lines } = parseCsv(readText(file));
  if (rows.length === 0) return [];
  const header = rows[0].map((h) => h.trim());
  for (const col of ['text', 'label'])
    if (!header.includes(col)) throw new OtfuseError('BAD_DATA', `the header has no '${col}' column (${describeColumns(header)})`, { file });
  return rows.slice(1).map((r, i) => {
    if (r.length !== header.length) throw new OtfuseError('BAD_DATA', `line ${lines[i + 1]}: ${r.length} fields, the header has ${header.length}`, { file });
    return record(Object.fromEntries(header.map((h, k) => [h, r[k]])), lines[i + 1], file);
  });
}

registerDatasetFormat({ accepts: (spec) => isTextFile(spec.path), open: (spec) => openTextDataset(spec as TextSpec) });

/** The sequence length text is truncated to when none is given, as transformers does (`truncation=True`): the
 * tokenizer's model_max_length; without one (or beyond the model's positions), max_position_embeddings, at most
 * 512. */
export function defaultMaxLength(modelMaxLength: number | undefined, maxPositions: unknown): number {
  const positions = typeof maxPositions === 'number' && maxPositions > 0 ? maxPositions : undefined;
  if (modelMaxLength !== undefined && (positions === undefined || modelMaxLength <= positions)) return modelMaxLength;
  return Math.min(512, positions ?? 512);
}
