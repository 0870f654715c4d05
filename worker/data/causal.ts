// Text for a causal language model (the tokenizer's folder holds a GPT-2 / Llama-family config.json): a .txt (one
// text per line) or a .jsonl ({"text": …} per line). Each non-empty line is tokenized and followed by EOS, the lines
// are concatenated and cut into blocks of `maxLength` tokens (the remainder is dropped: transformers' group_texts),
// and each block predicts its tokens 1…T−1 from the prefix: labels[t] = ids[t + 1], the last position unscored, so
// the first token of each block is never predicted. Evaluation then gives mean next-token loss (perplexity =
// e^loss) and next-token accuracy.
import path from 'node:path';
import { OtfuseError } from '../errors';
import { excerpt, exists, modelFolderRoot, parseJsonText, READ_LIMITS, readJsonObject, readText } from '../io/read';
import { IGNORE_LABEL, type Dataset, type FeedTensor } from './dataset';
import { openNpz, readNpz } from './npy';
import { loadCausalTokenizer } from './tokenizer';

/** model_type values whose folders hold causal LMs (kept in step with worker/hf/config-decoder.ts). */
const CAUSAL_TYPES = ['gpt2', 'llama', 'mistral', 'qwen2'];

/** Is the tokenizer folder (or the folder of a tokenizer.json) a causal LM's? */
export function isCausalLmFolder(where: string): boolean {
  const dir = where.endsWith('.json') ? path.dirname(where) : where;
  const cfg = path.join(dir, 'config.json');
  if (!exists(cfg)) return false;
  try {
    const c = readJsonObject(cfg, { code: 'BAD_DATA', what: 'config.json', maxBytes: READ_LIMITS.json, within: modelFolderRoot(dir) });
    return CAUSAL_TYPES.includes(c.model_type as string);
  } catch {
    return false;
  }
}

export const isCausalTextFile = (file: string) => /\.(txt|jsonl)$/i.test(file);

/** The texts of a .txt (each non-empty line) or a .jsonl (the 'text' field of each non-empty line). */
function readLines(file: string): string[] {
  const text = readText(file, { code: 'BAD_DATA', what: 'text dataset', maxBytes: READ_LIMITS.text });
  const out: string[] = [];
  const jsonl = file.toLowerCase().endsWith('.jsonl');
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (!line.trim()) return;
    if (!jsonl) {
      out.push(line.trim());
      return;
    }
    const obj = parseJsonText(line, 'BAD_DATA', `line ${i + 1}`, file) as Record<string, unknown> | null;
    if (!obj || typeof obj !== 'object' || Array.isArray(obj) || typeof obj.text !== 'string')
      throw new OtfuseError('BAD_DATA', `line ${i + 1}: no string field 'text'`, { file });
    if (obj.text.trim()) out.push(obj.text);
  });
  return out;
}

/** Token ids of the whole file (line + EOS, concatenated), cut into `maxLength` blocks. */
export function causalBlocks(file: string, tokenizerPath: string, maxLength: number): { ids: Int32Array; blocks: number } {
  if (!Number.isSafeInteger(maxLength) || maxLength < 2)
    throw new OtfuseError('BAD_USAGE', `a causal-LM block needs at least 2 tokens (max length ${excerpt(maxLength)})`, { file });
  const tok = loadCausalTokenizer(tokenizerPath);
  const all: number[] = [];
  for (const line of readLines(file)) {
    for (const id of tok.encode(line)) all.push(id);
    all.push(tok.eosId);
  }
  const blocks = Math.floor(all.length / maxLength);
  if (blocks === 0)
    throw new OtfuseError('BAD_DATA', `the text gives ${all.length} tokens, fewer than one block of ${maxLength} (lower --max-length)`, { file });
  return { ids: Int32Array.from(all.slice(0, blocks * maxLength)), blocks };
}

/** Next-token labels of [blocks, T] ids: ids shifted left by one, the last position of each block unscored. */
export function nextTokenLabels(ids: Int32Array, T: number): Int32Array {
  const labels = new Int32Array(ids.length);
  for (let b = 0; b < ids.length / T; b++) {
    for (let t = 0; t < T - 1; t++) labels[b * T + t] = ids[b * T + t + 1];
    labels[b * T + T - 1] = IGNORE_LABEL;
  }
  return labels;
}

/** A causal-LM dataset from [N, T] token ids (text blocks, or an .npz's input_ids). */
export function causalDataset(source: string, ids: Int32Array, T: number): Dataset {
  const labels = nextTokenLabels(ids, T);
  const n = ids.length / T;
  return {
    source,
    size: n,
    arrays: [{ name: 'input_ids', type: 'int64', sampleShape: [T] }],
    labels,
    labelsPerSample: T,
    causal: true,
    maxLength: T,
    close() {},
    take(indices) {
      const out = new BigInt64Array(indices.length * T);
      const lab = new Int32Array(indices.length * T);
      for (let b = 0; b < indices.length; b++) {
        for (let k = 0; k < T; k++) out[b * T + k] = BigInt(ids[indices[b] * T + k]);
        lab.set(labels.subarray(indices[b] * T, (indices[b] + 1) * T), b * T);
      }
      const feeds: Record<string, FeedTensor> = { input_ids: { type: 'int64', data: out, dims: [indices.length, T] } };
      return { feeds, labels: lab, indices: Int32Array.from(indices) };
    },
  };
}

/** The block length when none is given: the model's positions (n_positions / max_position_embeddings), at most 1024. */
export function defaultBlockLength(where: string): number {
  const dir = where.endsWith('.json') ? path.dirname(where) : where;
  const c = readJsonObject(path.join(dir, 'config.json'), { code: 'BAD_DATA', what: 'config.json', maxBytes: READ_LIMITS.json, within: modelFolderRoot(dir) });
  const n = c.n_positions ?? c.max_position_embeddings;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 2 ? Math.min(n, 1024) : 1024;
}

export function openCausalText(file: string, tokenizerPath: string, maxLength?: number): Dataset {
  const T = maxLength ?? defaultBlockLength(tokenizerPath);
  const { ids } = causalBlocks(file, tokenizerPath, T);
  return causalDataset(file, ids, T);
}

/** Architectures (run.json / ONNX metadata 'otfuse.hf.architecture') whose logits predict the next token. */
export const CAUSAL_ARCHITECTURES = ['GPT2LMHeadModel', 'LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM'];

/** Token ids [N, L] of a data set that feeds `input_ids`, as int32 (undefined when it has no such input). */
function inputIdsOf(ds: Dataset): { ids: Int32Array; T: number } | undefined {
  const info = ds.arrays.find((a) => a.name === 'input_ids');
  if (!info || info.sampleShape.length !== 1) return undefined;
  const T = info.sampleShape[0];
  const feed = ds.take(Array.from({ length: ds.size }, (_, i) => i)).feeds.input_ids;
  return { ids: Int32Array.from(feed.data as ArrayLike<number | bigint>, (v) => Number(v)), T };
}

/**
 * Token data in transformers' causal-LM convention (`labels` equal to `input_ids`: the model shifts them itself) is
 * scored as next-token prediction (labels shifted, the first token of each row not predicted) instead of as if every
 * position predicted its own token. Anything else is returned as it is.
 */
export function causalView(ds: Dataset): Dataset {
  if (ds.causal || !ds.labelsPerSample) return ds;
  const t = inputIdsOf(ds);
  if (!t || ds.labelsPerSample !== t.T || ds.labels.some((y, i) => y !== t.ids[i])) return ds;
  ds.close();
  return causalDataset(ds.source, t.ids, t.T);
}

/** Data for a model: `open()`, in the causal-LM view; for a causal LM (`architecture`), an .npz with only
 * `input_ids` [N, L] too. */
export function openForModel(open: () => Dataset, file: string, architecture: string | undefined): Dataset {
  if (architecture && CAUSAL_ARCHITECTURES.includes(architecture) && file.toLowerCase().endsWith('.npz')) {
    const npz = openNpz(file);
    const names = Object.keys(npz.arrays);
    npz.close();
    if (names.includes('input_ids') && !names.includes('labels') && !names.includes('y')) return openCausalNpz(file);
  }
  return causalView(open());
}

/** An .npz holding only `input_ids` [N, L] (no labels), for a causal LM. */
export function openCausalNpz(file: string): Dataset {
  const arrays = readNpz(file);
  const ids = arrays.input_ids;
  if (!ids || ids.shape.length !== 2) throw new OtfuseError('BAD_DATA', "a causal-LM .npz needs 'input_ids' [samples, tokens]", { file });
  return causalDataset(
    file,
    Int32Array.from(ids.data as ArrayLike<number | bigint>, (v) => Number(v)),
    ids.shape[1],
  );
}
