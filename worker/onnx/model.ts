// ONNX model files: read (embedded and external data), list, replace initializers, add outputs, write atomically.
import fs from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { OtfuseError } from '../errors';
import { writeFileAtomicWith } from './atomic';
import { closeQuietly, openRegular, readExactly, readRegularFile, readRegularFileAndStat, realPathInside } from './files';
import { bf16ToFloat, floatToBf16, floatToHalf, halfToFloat } from './halfs';

export { bf16ToFloat, floatToBf16, floatToHalf, halfToFloat };
export const DataType = onnx.TensorProto.DataType;
export type ModelProto = onnx.ModelProto;
export type NodeProto = onnx.INodeProto;
export type TensorProto = onnx.ITensorProto;

/** A float view of one initializer (every float type is read into float32). */
export interface Initializer {
  name: string;
  dims: number[];
  dataType: number;
  data: Float32Array;
}

import type { ModelSummary } from '../types';

export type { ModelSummary };

export class OnnxModel {
  readonly file: string;
  readonly proto: ModelProto;
  private readonly byName = new Map<string, onnx.ITensorProto>();

  constructor(proto: ModelProto, file: string) {
    this.proto = proto;
    this.file = file;
    for (const t of this.graph.initializer ?? []) this.byName.set(t.name ?? '', t);
  }

  get graph(): onnx.IGraphProto {
    return this.proto.graph!;
  }

  get nodes(): onnx.INodeProto[] {
    return this.graph.node ?? [];
  }

  initializerNames(): string[] {
    return [...this.byName.keys()];
  }

  hasInitializer(name: string): boolean {
    return this.byName.has(name);
  }

  /** Reads an initializer as float32 (fp16, bf16, fp64 are converted); integer tensors too, as numbers. */
  getInitializer(name: string): Initializer {
    const t = this.byName.get(name);
    if (!t) throw new OtfuseError('BAD_MODEL', `no initializer named '${name}'`, { file: this.file });
    return { name, dims: dimsOf(t), dataType: t.dataType ?? 0, data: tensorToFloat32(t, this.file) };
  }

  /** Replaces an initializer's values, keeping its name, dims and element type. */
  setInitializer(name: string, data: Float32Array, dims?: number[]): void {
    const t = this.byName.get(name);
    if (!t) throw new OtfuseError('BAD_MODEL', `no initializer named '${name}'`, { file: this.file });
    const newDims = dims ?? dimsOf(t);
    const count = newDims.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new OtfuseError('INTERNAL', `initializer '${name}': ${data.length} values for dims [${newDims}]`, { file: this.file });
    t.dims = newDims;
    t.rawData = float32ToRaw(data, t.dataType ?? DataType.FLOAT, name, this.file);
    t.floatData = [];
    t.doubleData = [];
    t.int32Data = [];
    t.externalData = [];
    t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
  }

  /**
   * Points a float initializer at `data` without copying (its bytes become a view of data's buffer, which must
   * stay unchanged while the model is used); other element types get converted values as setInitializer does.
   */
  viewInitializer(name: string, data: Float32Array): void {
    const t = this.byName.get(name);
    if (!t || (t.dataType ?? DataType.FLOAT) !== DataType.FLOAT || dimsOf(t).reduce((a, b) => a * b, 1) !== data.length) return this.setInitializer(name, data);
    t.rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    t.floatData = [];
    t.externalData = [];
    t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
  }

  /**
   * Gives every tensor (initializers, node attributes) whose bytes are a view into a larger buffer — the file the
   * model was read from — bytes of its own, so that buffer is freed once nothing else holds it.
   */
  ownBytes(): void {
    const own = (t: onnx.ITensorProto | null | undefined) => {
      if (t && deferred.has(t)) return; // read back from the file on use: holds no buffer
      const raw = t?.rawData;
      if (t && raw && raw.buffer.byteLength > 2 * raw.byteLength + 4096) t.rawData = raw.slice();
    };
    for (const t of this.graph.initializer ?? []) own(t);
    for (const n of this.nodes)
      for (const a of n.attribute ?? []) {
        own(a.t);
        for (const t of a.tensors ?? []) own(t);
      }
  }

  /** Exposes intermediate tensors as extra graph outputs (for activation capture). */
  addOutputs(names: string[]): void {
    const existing = new Set((this.graph.output ?? []).map((o) => o.name));
    for (const name of names) {
      if (existing.has(name)) continue;
      this.graph.output!.push(onnx.ValueInfoProto.create({ name }));
    }
  }

  /** Keeps only the given graph outputs, in that order (for sessions that fetch intermediates only). */
  setOutputs(names: string[]): void {
    this.graph.output = names.map((name) => onnx.ValueInfoProto.create({ name }));
  }

  /** A copy whose graph and initializer objects are its own; weight bytes are shared (never modified in place) or stay deferred. */
  clone(): OnnxModel {
    const proto = this.protoWithSharedInitializers();
    proto.graph!.initializer = (proto.graph!.initializer ?? []).map(copyTensor);
    return new OnnxModel(proto, this.file);
  }

  /**
   * A decoded copy of the proto for building a derived graph, except the initializers: the copy's list holds the
   * same TensorProto objects (their bytes are neither encoded again nor copied). A full clone of a ViT-B costs
   * 343 MB, and any tensor left in it (a Constant's value) keeps that whole buffer alive. Callers must not modify
   * the shared initializers in place (replace them instead).
   */
  protoWithSharedInitializers(): onnx.ModelProto {
    const g = this.graph;
    const initializers = g.initializer;
    g.initializer = [];
    try {
      const proto = onnx.ModelProto.decode(onnx.ModelProto.encode(this.proto).finish());
      proto.graph!.initializer = [...(initializers ?? [])];
      return proto;
    } finally {
      g.initializer = initializers;
    }
  }

  toBytes(): Uint8Array {
    return onnx.ModelProto.encode(this.proto).finish();
  }

  /** Writes the model atomically, one initializer at a time (see writeModel): no second copy of the weights. */
  save(target: string): void {
    writeFileAtomicWith(target, (fd) => writeModel(fd, this.proto));
  }

  summary(): ModelSummary {
    const opHistogram: Record<string, number> = {};
    for (const n of this.nodes) opHistogram[n.opType ?? '?'] = (opHistogram[n.opType ?? '?'] ?? 0) + 1;
    const opsets: Record<string, number> = {};
    for (const o of this.proto.opsetImport ?? []) opsets[o.domain || 'ai.onnx'] = Number(o.version);
    const initNames = new Set(this.byName.keys());
    const io = (v: onnx.IValueInfoProto) => ({
      name: v.name ?? '',
      type: DataType[v.type?.tensorType?.elemType ?? 0] ?? 'UNDEFINED',
      shape: (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue ?? 0))),
    });
    return {
      file: this.file,
      irVersion: Number(this.proto.irVersion ?? 0),
      opsets,
      producer: `${this.proto.producerName ?? ''} ${this.proto.producerVersion ?? ''}`.trim(),
      inputs: (this.graph.input ?? []).filter((i) => !initNames.has(i.name ?? '')).map(io),
      outputs: (this.graph.output ?? []).map(io),
      nodeCount: this.nodes.length,
      initializerCount: this.byName.size,
      // Trainable parameters as transformers counts them: float tensors, not the graph's scalar constants (rank 0).
      parameterCount: [...this.byName.values()]
        .filter((t) => isFloatTensor(t) && dimsOf(t).length > 0)
        .reduce((s, t) => s + dimsOf(t).reduce((a, b) => a * b, 1), 0),
      opHistogram,
      ...(this.proto.metadataProps?.length ? { metadata: Object.fromEntries(this.proto.metadataProps.map((p) => [p.key ?? '', p.value ?? ''])) } : {}),
    };
  }
}

export function isFloatTensor(t: onnx.ITensorProto): boolean {
  const dt = t.dataType ?? 0;
  return dt === DataType.FLOAT || dt === DataType.FLOAT16 || dt === DataType.BFLOAT16 || dt === DataType.DOUBLE;
}

export function dimsOf(t: onnx.ITensorProto): number[] {
  return (t.dims ?? []).map((d) => Number(d));
}

/** Another model format (e.g. a Hugging Face folder) that `loadModel` turns into an ONNX model in memory. */
export interface ModelSource {
  accepts(file: string): boolean;
  load(file: string): OnnxModel;
}

const modelSources: ModelSource[] = [];

export function registerModelSource(source: ModelSource): void {
  if (!modelSources.includes(source)) modelSources.push(source);
}

/** Reads and validates an ONNX file; external data is loaded (and kept inside the model's folder). */
export interface LoadOptions {
  /**
   * Keep only the graph in memory: initializers of at least `LAZY_MIN_BYTES` stored inside the file are read back
   * from it whenever their bytes are used (fusion reads each weight a few times, block by block, so holding both
   * parents' files — 2 × 343 MB for ViT-B/16 — is not needed). The file must not change while the model is used;
   * a changed file (size, modification time or inode) is an error naming it.
   */
  lazyWeights?: boolean;
}

export function loadModel(file: string, options: LoadOptions = {}): OnnxModel {
  for (const source of modelSources) if (source.accepts(file)) return source.load(file);
  if (!options.lazyWeights) return parseModel(readRegularFile(file, 'BAD_MODEL', 'model'), file);
  const { bytes, stat } = readRegularFileAndStat(file, 'BAD_MODEL', 'model');
  const identity = fileIdentity(stat);
  const model = parseModel(bytes, file);
  for (const t of model.graph.initializer ?? []) {
    const raw = t.rawData;
    // Only bytes that are a view of the file itself (not external data, which was read into buffers of its own).
    if (raw && raw.length >= LAZY_MIN_BYTES && raw.buffer === bytes.buffer)
      deferBytes(t, { file, identity, offset: raw.byteOffset - bytes.byteOffset, length: raw.length });
  }
  model.ownBytes(); // the small tensors left get bytes of their own, so the file's buffer is freed
  return model;
}

/** Initializers smaller than this stay in memory under `lazyWeights` (biases, norms: not worth a read each). */
export const LAZY_MIN_BYTES = 16 * 1024;

interface FileIdentity {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

function fileIdentity(st: fs.Stats): FileIdentity {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
}

interface DeferredBytes {
  file: string;
  identity: FileIdentity;
  offset: number;
  length: number;
}

const deferred = new WeakMap<onnx.ITensorProto, DeferredBytes>();
/** The last bytes read back (weakly held): an encoder reads `rawData` twice in a row (a presence test, then the value). */
let lastRead: { tensor: WeakRef<onnx.ITensorProto>; bytes: WeakRef<Uint8Array> } | undefined;

/** Whether the tensor's bytes are read back from its model file on use (loadModel's `lazyWeights`). */
export function isDeferred(t: onnx.ITensorProto): boolean {
  return deferred.has(t);
}

function readDeferred(t: onnx.ITensorProto, d: DeferredBytes): Uint8Array {
  if (lastRead?.tensor.deref() === t) {
    const hit = lastRead.bytes.deref();
    if (hit) return hit;
  }
  const opened = openRegular(d.file, 'BAD_MODEL', 'model');
  try {
    const now = fileIdentity(opened.stat);
    if (now.dev !== d.identity.dev || now.ino !== d.identity.ino || now.size !== d.identity.size || now.mtimeMs !== d.identity.mtimeMs)
      throw new OtfuseError('BAD_MODEL', `the model file changed on disk while in use (initializer '${t.name}' could not be read back); run again`, {
        file: d.file,
      });
    const bytes = readExactly(opened, d.length, d.offset, 'BAD_MODEL', 'model');
    lastRead = { tensor: new WeakRef(t), bytes: new WeakRef(bytes) };
    return bytes;
  } finally {
    closeQuietly(opened);
  }
}

/** Replaces `t.rawData` by a property that reads the bytes back from the file; assigning rawData makes it plain again. */
function deferBytes(t: onnx.ITensorProto, d: DeferredBytes): void {
  deferred.set(t, d);
  Object.defineProperty(t, 'rawData', {
    configurable: true,
    enumerable: true,
    get: () => readDeferred(t, d),
    set: (v: Uint8Array) => {
      deferred.delete(t);
      Object.defineProperty(t, 'rawData', { configurable: true, enumerable: true, writable: true, value: v });
    },
  });
}

/** Bytes of a tensor's raw data, without reading deferred bytes back. */
export function rawByteLength(t: onnx.ITensorProto): number {
  return deferred.get(t)?.length ?? t.rawData?.length ?? 0;
}

/** A TensorProto with every field of `t` but raw_data (deferred bytes are not read). */
export function withoutRawData(t: onnx.ITensorProto): onnx.TensorProto {
  const { rawData: _, ...rest } = Object.getOwnPropertyDescriptors(t);
  const copy = onnx.TensorProto.create({});
  Object.defineProperties(copy, rest);
  return copy;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

/** A length-delimited protobuf field's header: the tag (field number, wire type 2) and the length. */
function fieldHeader(field: number, length: number): Uint8Array {
  return Uint8Array.from([(field << 3) | 2, ...varint(length)]);
}

/**
 * Encodes the model into `fd` piece by piece: the graph's initializers one at a time, each tensor's raw data
 * written as it is read (deferred bytes come back from their file here), so saving a 440 MB model never builds a
 * 440 MB buffer. The message is ModelProto's with, inside the graph, the initializers after its other fields and,
 * inside each tensor, raw_data after its other fields (protobuf readers accept fields in any order; decoding the
 * file gives the same message as decoding `toBytes()`).
 */
function writeModel(fd: number, proto: onnx.IModelProto): void {
  const put = (bytes: Uint8Array) => fs.writeFileSync(fd, bytes); // at the descriptor's position, every byte
  const graph = proto.graph ?? onnx.GraphProto.create();
  const inits = graph.initializer ?? [];
  const heads = inits.map((t) => onnx.TensorProto.encode(withoutRawData(t)).finish());
  const tensorLength = inits.map((t, i) => {
    const raw = rawByteLength(t);
    return heads[i].length + (raw ? fieldHeader(9, raw).length + raw : 0);
  });
  const graphHead = onnx.GraphProto.encode(onnx.GraphProto.create({ ...graph, initializer: [] })).finish();
  const graphLength = graphHead.length + tensorLength.reduce((s, n) => s + fieldHeader(5, n).length + n, 0);
  const modelHead = onnx.ModelProto.encode(onnx.ModelProto.create({ ...proto, graph: undefined })).finish();
  put(modelHead);
  put(fieldHeader(7, graphLength));
  put(graphHead);
  inits.forEach((t, i) => {
    put(fieldHeader(5, tensorLength[i]));
    put(heads[i]);
    if (rawByteLength(t)) {
      const raw = t.rawData!;
      put(fieldHeader(9, raw.length));
      put(raw);
    }
  });
}

/** A new TensorProto with the same fields; deferred bytes stay deferred (not read into the copy). */
export function copyTensor(t: onnx.ITensorProto): onnx.TensorProto {
  const d = deferred.get(t);
  if (!d) return onnx.TensorProto.create({ ...t });
  const copy = withoutRawData(t);
  deferBytes(copy, d);
  return copy;
}

export function parseModel(bytes: Uint8Array, file: string): OnnxModel {
  let proto: ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new OtfuseError('BAD_MODEL', `not a valid ONNX model (the file is truncated or not ONNX protobuf: ${(err as Error).message})`, { file });
  }
  const graph = proto.graph;
  if (!graph || !graph.node || graph.node.length === 0 || !proto.irVersion || (proto.opsetImport ?? []).length === 0) {
    throw new OtfuseError('BAD_MODEL', 'not a valid ONNX model (no graph, nodes, IR version or opset)', { file });
  }
  for (const n of graph.node) {
    if (!n.opType) throw new OtfuseError('BAD_MODEL', 'not a valid ONNX model (a node has no op type)', { file });
  }
  for (const t of graph.initializer ?? []) {
    if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData ?? []).length > 0) loadExternal(t, file);
    checkTensorSize(t, file);
  }
  return new OnnxModel(proto, file);
}

/** Dims are non-negative integers and the data present matches them (checked before anything is allocated). */
function checkTensorSize(t: onnx.ITensorProto, file: string): void {
  const dims = dimsOf(t);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new OtfuseError('BAD_MODEL', `initializer '${t.name}' has invalid dims [${dims}]`, { file });
  const count = dims.reduce((a, b) => a * b, 1);
  const width = bytesPerElement(t.dataType ?? 0);
  if (!Number.isSafeInteger(count * Math.max(1, width)))
    throw new OtfuseError('BAD_MODEL', `initializer '${t.name}' declares an impossible size [${dims}]`, { file });
  if (t.rawData && t.rawData.length > 0) {
    if (width > 0 && t.rawData.length !== count * width) {
      throw new OtfuseError(
        'BAD_MODEL',
        `initializer '${t.name}' has ${t.rawData.length} bytes, expected ${count * width} for dims [${dims}] (truncated file?)`,
        { file },
      );
    }
    return;
  }
  const typed = Math.max(
    t.floatData?.length ?? 0,
    t.doubleData?.length ?? 0,
    t.int32Data?.length ?? 0,
    t.int64Data?.length ?? 0,
    t.uint64Data?.length ?? 0,
    t.stringData?.length ?? 0,
  );
  if (count > 0 && typed !== count) {
    throw new OtfuseError('BAD_MODEL', `initializer '${t.name}' declares dims [${dims}] (${count} values) but holds ${typed}`, { file });
  }
}

function loadExternal(t: onnx.ITensorProto, file: string): void {
  const info = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = info.get('location');
  const what = `initializer '${t.name}'`;
  if (!location) throw new OtfuseError('BAD_MODEL', `${what} has external data without a location`, { file });
  const dir = path.dirname(path.resolve(file));
  const target = path.resolve(dir, location);
  // Containment on real paths: a symlink inside the folder that points outside it is refused like '../x'.
  const lexicallyInside = !path.isAbsolute(location) && target.startsWith(dir + path.sep);
  if (!lexicallyInside) throw new OtfuseError('BAD_MODEL', `${what}: external data path '${location}' escapes the model's folder`, { file });
  if (!fs.existsSync(target)) throw new OtfuseError('BAD_MODEL', `${what}: external data file '${location}' does not exist`, { file });
  const real = realPathInside(dir, target);
  if (!real) throw new OtfuseError('BAD_MODEL', `${what}: external data path '${location}' is a symbolic link that escapes the model's folder`, { file });
  const offset = Number(info.get('offset') ?? 0);
  const count = dimsOf(t).reduce((a, b) => a * b, 1);
  const width = bytesPerElement(t.dataType ?? 0);
  if (width === 0)
    throw new OtfuseError('UNSUPPORTED', `${what} has external data of unsupported element type ${DataType[t.dataType ?? 0] ?? t.dataType}`, { file });
  // The length is bounded by the tensor's declared size (never trusted on its own).
  const declared = count * width;
  const length = info.has('length') ? Number(info.get('length')) : declared;
  if (!Number.isSafeInteger(offset) || offset < 0) throw new OtfuseError('BAD_MODEL', `${what}: bad external data offset '${info.get('offset')}'`, { file });
  if (!Number.isSafeInteger(count) || count < 0 || length !== declared) {
    throw new OtfuseError('BAD_MODEL', `${what}: external data length ${length} does not match its dims [${dimsOf(t)}] (${declared} bytes)`, { file });
  }
  let opened;
  try {
    opened = openRegular(real, 'BAD_MODEL', `external data file '${location}' of ${what}`);
    t.rawData = readExactly(opened, length, offset, 'BAD_MODEL', `external data file '${location}' of ${what}`);
  } catch (err) {
    // Name the model (the file the user opened); the message names the data file.
    const e = err as OtfuseError;
    throw new OtfuseError('BAD_MODEL', e.file && e.file !== file ? e.message.slice(e.file.length + 2) : e.message, { file });
  } finally {
    closeQuietly(opened);
  }
  t.externalData = [];
  t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
}

export function bytesPerElement(dataType: number): number {
  switch (dataType) {
    case DataType.FLOAT:
    case DataType.INT32:
    case DataType.UINT32:
      return 4;
    case DataType.DOUBLE:
    case DataType.INT64:
    case DataType.UINT64:
      return 8;
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
    case DataType.INT16:
    case DataType.UINT16:
      return 2;
    case DataType.INT8:
    case DataType.UINT8:
    case DataType.BOOL:
      return 1;
    default:
      return 0;
  }
}

export function tensorToFloat32(t: onnx.ITensorProto, file = ''): Float32Array {
  const count = dimsOf(t).reduce((a, b) => a * b, 1);
  const dt = t.dataType ?? 0;
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const out = new Float32Array(count);
  if (raw) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < count; i++) {
      switch (dt) {
        case DataType.FLOAT:
          out[i] = view.getFloat32(i * 4, true);
          break;
        case DataType.DOUBLE:
          out[i] = view.getFloat64(i * 8, true);
          break;
        case DataType.FLOAT16:
          out[i] = halfToFloat(view.getUint16(i * 2, true));
          break;
        case DataType.BFLOAT16:
          out[i] = bf16ToFloat(view.getUint16(i * 2, true));
          break;
        case DataType.INT64:
          out[i] = Number(view.getBigInt64(i * 8, true));
          break;
        case DataType.INT32:
          out[i] = view.getInt32(i * 4, true);
          break;
        case DataType.INT8:
          out[i] = view.getInt8(i);
          break;
        case DataType.UINT8:
        case DataType.BOOL:
          out[i] = view.getUint8(i);
          break;
        default:
          throw new OtfuseError('UNSUPPORTED', `initializer '${t.name}' has unsupported element type ${DataType[dt] ?? dt}`, { file });
      }
    }
    return out;
  }
  // Typed fields: fp16/bf16 values live in int32Data as bit patterns.
  const source: ArrayLike<number | { toNumber(): number }> =
    dt === DataType.FLOAT
      ? (t.floatData ?? [])
      : dt === DataType.DOUBLE
        ? (t.doubleData ?? [])
        : dt === DataType.INT64
          ? ((t.int64Data as ArrayLike<number>) ?? [])
          : (t.int32Data ?? []);
  if (source.length !== count && count > 0) {
    throw new OtfuseError('BAD_MODEL', `initializer '${t.name}' has ${source.length} values for dims [${dimsOf(t)}]`, { file });
  }
  for (let i = 0; i < count; i++) {
    const v = source[i];
    const n = typeof v === 'number' ? v : v.toNumber();
    out[i] = dt === DataType.FLOAT16 ? halfToFloat(n) : dt === DataType.BFLOAT16 ? bf16ToFloat(n) : n;
  }
  return out;
}

function float32ToRaw(data: Float32Array, dt: number, name: string, file: string): Uint8Array {
  switch (dt) {
    case DataType.FLOAT:
      return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    case DataType.DOUBLE: {
      const d = Float64Array.from(data);
      return new Uint8Array(d.buffer);
    }
    case DataType.FLOAT16: {
      const h = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) h[i] = floatToHalf(data[i]);
      return new Uint8Array(h.buffer);
    }
    case DataType.BFLOAT16: {
      const h = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) h[i] = floatToBf16(data[i]);
      return new Uint8Array(h.buffer);
    }
    default:
      throw new OtfuseError('UNSUPPORTED', `cannot write initializer '${name}' of element type ${DataType[dt] ?? dt}`, { file });
  }
}
