// Datasets: .npz (x/y or arrays named after model inputs), IDX with a preprocessing spec, and JSON specs.
import path from 'node:path';
import { OtfuseError } from '../errors';
import { openNpz as openNpzFile, LazyNpy, NpyData } from './npy';
import { openIdx as openIdxFile } from './idx';
import { exists, readJsonObject } from '../io/read';

export type FeedType = 'float32' | 'int64';

export interface FeedTensor {
  type: FeedType;
  data: Float32Array | BigInt64Array;
  dims: number[];
}

export interface Batch {
  feeds: Record<string, FeedTensor>;
  labels: Int32Array;
  /** Indices of the samples in this batch, for masks and bookkeeping. */
  indices: Int32Array;
}

import type { DatasetSpec, Preprocess } from '../types';

export type { DatasetSpec, Preprocess };

export interface ArrayInfo {
  name: string;
  type: FeedType;
  sampleShape: number[];
}

export interface Dataset {
  /** The file the samples come from (named in errors). */
  source: string;
  size: number;
  arrays: ArrayInfo[];
  labels: Int32Array;
  /**
   * Token labels (masked-LM data: `labels` [N, T]): labels per sample (T); `labels` and every batch's labels are
   * then [samples × T], row-major, with IGNORE_LABEL (−100) at positions that are not predicted. Undefined: one
   * class label per sample.
   */
  labelsPerSample?: number;
  /** Causal-LM data (worker/data/causal.ts): token labels are the next tokens; the loss gives perplexity. */
  causal?: boolean;
  /** Text data: the sequence length it was tokenized at (truncation). */
  maxLength?: number;
  /** Builds a batch of the given sample indices; inputs are materialised only for those samples (read from the
   * file on demand: sequential batches stream, a shuffled order spills a compressed member once). */
  take(indices: ArrayLike<number>): Batch;
  /** Releases the file handles (also done when the dataset is garbage-collected). */
  close(): void;
}

/** Token positions a masked-LM label array does not score (PyTorch's CrossEntropyLoss ignore_index). */
export const IGNORE_LABEL = -100;

/** Label arrays are read whole: at most this many bytes. */
const MAX_LABEL_BYTES = 256 * 2 ** 20;

const closer = new FinalizationRegistry<() => void>((close) => close());

export function specFromArg(arg: string | DatasetSpec): DatasetSpec {
  return typeof arg === 'string' ? { path: arg } : arg;
}

/** Another dataset format (text files through a tokenizer, image folders, …) that openDataset can open. */
export interface DatasetFormat {
  accepts(spec: DatasetSpec): boolean;
  open(spec: DatasetSpec): Dataset;
}

const datasetFormats: DatasetFormat[] = [];

export function registerDatasetFormat(format: DatasetFormat): void {
  if (!datasetFormats.includes(format)) datasetFormats.push(format);
}

export function openDataset(specArg: string | DatasetSpec): Dataset {
  let spec = specFromArg(specArg);
  if (spec.path.endsWith('.json')) spec = { ...readJsonSpec(spec.path), ...withoutPath(spec) };
  const offset = spec.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new OtfuseError('BAD_USAGE', `the dataset offset must be a non-negative integer (got ${offset})`, { file: spec.path });
  if (spec.limit !== undefined && (!Number.isSafeInteger(spec.limit) || spec.limit < 1))
    throw new OtfuseError('BAD_USAGE', `the dataset limit must be a positive integer (got ${spec.limit})`, { file: spec.path });
  const format = datasetFormats.find((f) => f.accepts(spec));
  if (!format && !exists(spec.path)) throw new OtfuseError('BAD_DATA', 'dataset file not found', { file: spec.path });
  const base = format ? format.open(spec) : isIdx(spec.path) ? openIdx(spec) : openNpz(spec);
  if (base.size === 0) {
    base.close();
    throw new OtfuseError('BAD_DATA', 'the dataset has no samples', { file: spec.path });
  }
  if (offset >= base.size) {
    base.close();
    throw new OtfuseError('BAD_USAGE', `offset ${offset} is past the end of the dataset (${base.size} samples)`, { file: spec.path });
  }
  let closed = false;
  const closeOnce = () => {
    if (!closed) {
      closed = true;
      base.close();
    }
  };
  const ds = { ...window(base, offset, spec.limit), close: closeOnce };
  closer.register(ds, closeOnce);
  return ds;
}

/** Labels must be class indices: finite non-negative integers below 2³¹ (not silently cast). */
function toLabels(values: ArrayLike<number | bigint>, file: string, array: string, ignore = false): Int32Array {
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i]);
    if (ignore && v === IGNORE_LABEL) {
      out[i] = v;
      continue;
    }
    if (!Number.isInteger(v) || v < 0 || v > 2 ** 31 - 1) {
      throw new OtfuseError('BAD_DATA', `label ${values[i]} of sample ${i} (array '${array}') is not a class index (a non-negative integer)`, { file });
    }
    out[i] = v;
  }
  return out;
}

/** Sorted runs of consecutive indices, so a batch is read with as few reads as possible. */
function runs(indices: ArrayLike<number>): { at: number; start: number; count: number }[] {
  const out: { at: number; start: number; count: number }[] = [];
  for (let b = 0; b < indices.length; b++) {
    const last = out[out.length - 1];
    if (last && indices[b] === last.start + last.count) last.count++;
    else out.push({ at: b, start: indices[b], count: 1 });
  }
  return out;
}

function checkIndices(indices: ArrayLike<number>, size: number, file: string): void {
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i];
    if (!Number.isInteger(k) || k < 0 || k >= size) throw new OtfuseError('INTERNAL', `sample index ${k} is outside the dataset (${size} samples)`, { file });
  }
}

function withoutPath(spec: DatasetSpec): Partial<DatasetSpec> {
  const { path: _ignored, ...rest } = spec;
  return rest;
}

export function readJsonSpec(file: string): DatasetSpec {
  const parsed = readJsonObject(file, { code: 'BAD_DATA', what: 'dataset spec', maxBytes: 1 << 20 }) as unknown as DatasetSpec;
  if (typeof parsed.path !== 'string') throw new OtfuseError('BAD_DATA', "dataset spec needs a 'path'", { file });
  const dir = path.dirname(file);
  return { ...parsed, path: path.resolve(dir, parsed.path), labels: parsed.labels ? path.resolve(dir, parsed.labels) : undefined };
}

function isIdx(file: string): boolean {
  return /(idx\d-ubyte|ubyte)(\.gz)?$/.test(file) || /\.idx\d?(\.gz)?$/.test(file);
}

function openIdx(spec: DatasetSpec): Dataset {
  if (!spec.labels) throw new OtfuseError('BAD_DATA', 'IDX images need a labels file (--labels or "labels" in the spec)', { file: spec.path });
  if (spec.mean === undefined || spec.std === undefined) {
    throw new OtfuseError('BAD_DATA', 'IDX images need their preprocessing: --mean and --std (and --scale, default 255), or a JSON dataset spec', {
      file: spec.path,
    });
  }
  const scale = spec.scale ?? 255;
  const mean = spec.mean[0];
  const std = spec.std[0];
  if (!Number.isFinite(scale) || scale <= 0 || !Number.isFinite(mean) || !Number.isFinite(std) || std <= 0) {
    throw new OtfuseError('BAD_USAGE', `preprocessing needs a finite scale > 0, mean and std > 0 (got scale ${scale}, mean ${mean}, std ${std})`, {
      file: spec.path,
    });
  }
  const labelsIdx = openIdxFile(spec.labels);
  let labels: Int32Array;
  try {
    if (labelsIdx.shape.length !== 1) throw new OtfuseError('BAD_DATA', `expected IDX labels of rank 1, got [${labelsIdx.shape}]`, { file: spec.labels });
    if (labelsIdx.count > MAX_LABEL_BYTES)
      throw new OtfuseError('BAD_DATA', `${labelsIdx.count} labels are more than this reader accepts`, { file: spec.labels });
    labels = Int32Array.from(labelsIdx.elements(0, labelsIdx.count));
  } finally {
    labelsIdx.close();
  }
  const images = openIdxFile(spec.path);
  try {
    if (images.shape.length !== 3) throw new OtfuseError('BAD_DATA', `expected IDX images of rank 3 [n, h, w], got [${images.shape}]`, { file: spec.path });
    if (labels.length !== images.shape[0]) throw new OtfuseError('BAD_DATA', `${labels.length} labels for ${images.shape[0]} images`, { file: spec.labels });
    if (images.shape[1] * images.shape[2] === 0) throw new OtfuseError('BAD_DATA', `IDX images of shape [${images.shape}] are empty`, { file: spec.path });
  } catch (err) {
    images.close();
    throw err;
  }
  const [n, h, w] = images.shape;
  const pixels = h * w;
  return {
    source: spec.path,
    size: n,
    arrays: [{ name: 'x', type: 'float32', sampleShape: [1, h, w] }],
    labels,
    take(indices) {
      checkIndices(indices, n, spec.path);
      const count = indices.length;
      const data = new Float32Array(count * pixels);
      for (const run of runs(indices)) {
        const px = images.elements(run.start * pixels, run.count * pixels);
        const base = run.at * pixels;
        for (let p = 0; p < px.length; p++) data[base + p] = (px[p] / scale - mean) / std;
      }
      return { feeds: { x: { type: 'float32', data, dims: [count, 1, h, w] } }, labels: pick(labels, indices), indices: Int32Array.from(indices) };
    },
    close: () => images.close(),
  };
}

function openNpz(spec: DatasetSpec): Dataset {
  if (!spec.path.endsWith('.npz')) {
    throw new OtfuseError('BAD_DATA', 'unknown dataset format: use a .npz (x + y, or arrays named after the model inputs + y), IDX files, or a .json spec', {
      file: spec.path,
    });
  }
  const npz = openNpzFile(spec.path);
  try {
    const arrays = npz.arrays;
    const yName = arrays.y ? 'y' : arrays.labels ? 'labels' : undefined;
    if (!yName) throw new OtfuseError('BAD_DATA', `no label array 'y' (arrays: ${Object.keys(arrays).join(', ') || 'none'})`, { file: spec.path });
    const y = arrays[yName];
    // Masked-LM data: 'labels' [N, T] (token ids, −100 where no token is predicted).
    const perSample = yName === 'labels' && y.shape.length === 2 ? y.shape[1] : undefined;
    if (y.shape.length !== 1 && !perSample)
      throw new OtfuseError(
        'BAD_DATA',
        `label array '${yName}' must be one-dimensional (or 'labels' [samples, tokens] for masked-LM data), got shape [${y.shape}]`,
        { file: spec.path },
      );
    if (y.header.byteLength > MAX_LABEL_BYTES)
      throw new OtfuseError('BAD_DATA', `label array '${yName}' has ${y.header.count} entries, more than this reader accepts`, { file: spec.path });
    if (!['i8', 'i4', 'u1', 'i1', 'u2', 'i2', 'f4', 'f8', 'b1'].includes(y.dtype))
      throw new OtfuseError('BAD_DATA', `label array '${yName}' has unsupported dtype ${y.dtype}`, { file: spec.path });
    const n = y.shape[0];
    const L = perSample ?? 1;
    const labels = toLabels(y.elements(0, n * L) as ArrayLike<number | bigint>, spec.path, yName, !!perSample);
    const inputs: { info: ArrayInfo; array: LazyNpy }[] = [];
    for (const [name, array] of Object.entries(arrays)) {
      if (array === y) continue;
      if (array.shape.length < 1 || array.shape[0] !== n)
        throw new OtfuseError('BAD_DATA', `array '${name}' has ${array.shape[0] ?? 'no'} samples but ${yName} has ${n}`, { file: spec.path });
      const type = floatOrInt(array, name, spec);
      if (array.shape.slice(1).some((d) => d === 0))
        throw new OtfuseError('BAD_DATA', `array '${name}' has empty samples (shape [${array.shape}])`, { file: spec.path });
      inputs.push({ info: { name, type, sampleShape: array.shape.slice(1) }, array });
    }
    if (inputs.length === 0) throw new OtfuseError('BAD_DATA', 'no input arrays besides the labels', { file: spec.path });
    return {
      source: spec.path,
      size: n,
      arrays: inputs.map((i) => i.info),
      labels,
      ...(perSample ? { labelsPerSample: perSample } : {}),
      take(indices) {
        checkIndices(indices, n, spec.path);
        const feeds: Record<string, FeedTensor> = {};
        for (const { info, array } of inputs) feeds[info.name] = gatherRows(array, info, indices, spec);
        return { feeds, labels: pick(labels, indices, L), indices: Int32Array.from(indices) };
      },
      close: () => npz.close(),
    };
  } catch (err) {
    npz.close();
    throw err;
  }
}

function floatOrInt(array: LazyNpy, name: string, spec: DatasetSpec): FeedType {
  if (array.dtype === 'f4' || array.dtype === 'f8') return 'float32';
  if (array.dtype === 'i8' || array.dtype === 'i4') return 'int64';
  if (array.dtype === 'u1' && spec.mean !== undefined) return 'float32';
  throw new OtfuseError(
    'BAD_DATA',
    `array '${name}' has dtype ${array.dtype}; inputs must be float32 (preprocessed) or int64 token ids (uint8 images need --mean/--std)`,
    { file: spec.path },
  );
}

function gatherRows(array: LazyNpy, info: ArrayInfo, indices: ArrayLike<number>, spec: DatasetSpec): FeedTensor {
  const row = info.sampleShape.reduce((a, b) => a * b, 1);
  const count = indices.length;
  const dims = [count, ...info.sampleShape];
  const out = info.type === 'int64' ? new BigInt64Array(count * row) : new Float32Array(count * row);
  const pre = array.dtype === 'u1' ? { scale: spec.scale ?? 255, mean: spec.mean?.[0] ?? 0, std: spec.std?.[0] ?? 1 } : undefined;
  for (const run of runs(indices)) {
    const src: NpyData = array.elements(run.start * row, run.count * row);
    const base = run.at * row;
    if (out instanceof BigInt64Array) {
      for (let k = 0; k < src.length; k++) out[base + k] = BigInt(src[k]);
    } else if (pre) {
      for (let k = 0; k < src.length; k++) out[base + k] = ((src[k] as number) / pre.scale - pre.mean) / pre.std;
    } else {
      out.set(src as Float32Array | Float64Array, base);
    }
  }
  return info.type === 'int64' ? { type: 'int64', data: out, dims } : { type: 'float32', data: out, dims };
}

function pick(labels: Int32Array, indices: ArrayLike<number>, per = 1): Int32Array {
  const out = new Int32Array(indices.length * per);
  for (let i = 0; i < indices.length; i++) out.set(labels.subarray(indices[i] * per, (indices[i] + 1) * per), i * per);
  return out;
}

function window(base: Dataset, offset: number, limit?: number): Dataset {
  if (offset === 0 && (limit === undefined || limit >= base.size)) return base;
  const size = Math.max(0, Math.min(base.size - offset, limit ?? Infinity));
  return {
    source: base.source,
    size,
    arrays: base.arrays,
    labels: base.labels.subarray(offset * (base.labelsPerSample ?? 1), (offset + size) * (base.labelsPerSample ?? 1)),
    ...(base.labelsPerSample ? { labelsPerSample: base.labelsPerSample } : {}),
    ...(base.maxLength !== undefined ? { maxLength: base.maxLength } : {}),
    close: () => base.close(),
    take: (indices) => {
      checkIndices(indices, size, base.source);
      const shifted = Array.from(indices, (i) => i + offset);
      const batch = base.take(shifted);
      return { ...batch, indices: Int32Array.from(indices) };
    },
  };
}

/** Consecutive batches over the whole dataset (or a prefix of `limit` samples). */
export function* batches(dataset: Dataset, batchSize: number, limit = dataset.size): Generator<Batch> {
  for (let start = 0; start < limit; start += batchSize) {
    const count = Math.min(batchSize, limit - start);
    const indices = new Int32Array(count);
    for (let i = 0; i < count; i++) indices[i] = start + i;
    yield dataset.take(indices);
  }
}
