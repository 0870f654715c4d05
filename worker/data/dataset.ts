// Datasets: .npz (x/y or arrays named after model inputs), IDX with a preprocessing spec, and JSON specs.
import fs from 'node:fs';
import path from 'node:path';
import { OtfuseError } from '../errors';
import { readNpz, NpyArray } from './npy';
import { readIdx } from './idx';

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
  /** Builds a batch of the given sample indices; inputs are materialised only for those samples. */
  take(indices: ArrayLike<number>): Batch;
}

export function specFromArg(arg: string | DatasetSpec): DatasetSpec {
  return typeof arg === 'string' ? { path: arg } : arg;
}

export function openDataset(specArg: string | DatasetSpec): Dataset {
  let spec = specFromArg(specArg);
  if (spec.path.endsWith('.json')) spec = { ...readJsonSpec(spec.path), ...withoutPath(spec) };
  if (!fs.existsSync(spec.path)) throw new OtfuseError('BAD_DATA', 'dataset file not found', { file: spec.path });
  const base = isIdx(spec.path) ? openIdx(spec) : openNpz(spec);
  return window(base, spec.offset ?? 0, spec.limit);
}

function withoutPath(spec: DatasetSpec): Partial<DatasetSpec> {
  const { path: _ignored, ...rest } = spec;
  return rest;
}

function readJsonSpec(file: string): DatasetSpec {
  let parsed: DatasetSpec;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as DatasetSpec;
  } catch (err) {
    throw new OtfuseError('BAD_DATA', `cannot read dataset spec: ${(err as Error).message}`, { file });
  }
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
    throw new OtfuseError('BAD_DATA', 'IDX images need their preprocessing: --mean and --std (and --scale, default 255), or a JSON dataset spec', { file: spec.path });
  }
  const images = readIdx(spec.path);
  const labelsIdx = readIdx(spec.labels);
  if (images.shape.length !== 3) throw new OtfuseError('BAD_DATA', `expected IDX images of rank 3 [n, h, w], got [${images.shape}]`, { file: spec.path });
  const [n, h, w] = images.shape;
  if (labelsIdx.shape[0] !== n) throw new OtfuseError('BAD_DATA', `${labelsIdx.shape[0]} labels for ${n} images`, { file: spec.labels });
  const scale = spec.scale ?? 255;
  const mean = spec.mean[0];
  const std = spec.std[0];
  const pixels = h * w;
  return {
    source: spec.path,
    size: n,
    arrays: [{ name: 'x', type: 'float32', sampleShape: [1, h, w] }],
    labels: Int32Array.from(labelsIdx.data),
    take(indices) {
      const count = indices.length;
      const data = new Float32Array(count * pixels);
      for (let b = 0; b < count; b++) {
        const src = indices[b] * pixels;
        for (let p = 0; p < pixels; p++) data[b * pixels + p] = (images.data[src + p] / scale - mean) / std;
      }
      return { feeds: { x: { type: 'float32', data, dims: [count, 1, h, w] } }, labels: pick(this.labels, indices), indices: Int32Array.from(indices) };
    },
  };
}

function openNpz(spec: DatasetSpec): Dataset {
  if (!spec.path.endsWith('.npz')) {
    throw new OtfuseError('BAD_DATA', 'unknown dataset format: use a .npz (x + y, or arrays named after the model inputs + y), IDX files, or a .json spec', { file: spec.path });
  }
  const arrays = readNpz(spec.path);
  const y = arrays.y ?? arrays.labels;
  if (!y) throw new OtfuseError('BAD_DATA', `no label array 'y' (arrays: ${Object.keys(arrays).join(', ')})`, { file: spec.path });
  const n = y.shape[0];
  const labels = Int32Array.from(y.data as ArrayLike<number | bigint>, (v) => Number(v));
  const inputs: { info: ArrayInfo; array: NpyArray }[] = [];
  for (const [name, array] of Object.entries(arrays)) {
    if (array === y) continue;
    if (array.shape[0] !== n) throw new OtfuseError('BAD_DATA', `array '${name}' has ${array.shape[0]} samples but y has ${n}`, { file: spec.path });
    const type = floatOrInt(array, name, spec);
    inputs.push({ info: { name, type, sampleShape: array.shape.slice(1) }, array });
  }
  if (inputs.length === 0) throw new OtfuseError('BAD_DATA', 'no input arrays besides the labels', { file: spec.path });
  return {
    source: spec.path,
    size: n,
    arrays: inputs.map((i) => i.info),
    labels,
    take(indices) {
      const feeds: Record<string, FeedTensor> = {};
      for (const { info, array } of inputs) feeds[info.name] = gatherRows(array, info, indices, spec);
      return { feeds, labels: pick(labels, indices), indices: Int32Array.from(indices) };
    },
  };
}

function floatOrInt(array: NpyArray, name: string, spec: DatasetSpec): FeedType {
  if (array.dtype === 'f4' || array.dtype === 'f8') return 'float32';
  if (array.dtype === 'i8' || array.dtype === 'i4') return 'int64';
  if (array.dtype === 'u1' && spec.mean !== undefined) return 'float32';
  throw new OtfuseError('BAD_DATA', `array '${name}' has dtype ${array.dtype}; inputs must be float32 (preprocessed) or int64 token ids (uint8 images need --mean/--std)`, { file: spec.path });
}

function gatherRows(array: NpyArray, info: ArrayInfo, indices: ArrayLike<number>, spec: DatasetSpec): FeedTensor {
  const row = info.sampleShape.reduce((a, b) => a * b, 1);
  const count = indices.length;
  const dims = [count, ...info.sampleShape];
  if (info.type === 'int64') {
    const out = new BigInt64Array(count * row);
    const src = array.data;
    for (let b = 0; b < count; b++) {
      const off = indices[b] * row;
      for (let k = 0; k < row; k++) out[b * row + k] = BigInt(src[off + k] as number | bigint);
    }
    return { type: 'int64', data: out, dims };
  }
  const out = new Float32Array(count * row);
  const src = array.data as ArrayLike<number>;
  const pre = array.dtype === 'u1' ? { scale: spec.scale ?? 255, mean: spec.mean?.[0] ?? 0, std: spec.std?.[0] ?? 1 } : undefined;
  for (let b = 0; b < count; b++) {
    const off = indices[b] * row;
    for (let k = 0; k < row; k++) {
      const v = src[off + k];
      out[b * row + k] = pre ? (v / pre.scale - pre.mean) / pre.std : v;
    }
  }
  return { type: 'float32', data: out, dims };
}

function pick(labels: Int32Array, indices: ArrayLike<number>): Int32Array {
  const out = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) out[i] = labels[indices[i]];
  return out;
}

function window(base: Dataset, offset: number, limit?: number): Dataset {
  if (offset === 0 && (limit === undefined || limit >= base.size)) return base;
  const size = Math.max(0, Math.min(base.size - offset, limit ?? Infinity));
  return {
    source: base.source,
    size,
    arrays: base.arrays,
    labels: base.labels.subarray(offset, offset + size),
    take: (indices) => {
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
