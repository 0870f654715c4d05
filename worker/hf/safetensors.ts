// safetensors with every dtype a checkpoint may hold, read strictly and written back byte for byte.
// Format: u64 little-endian header length N, N bytes of JSON {key: {dtype, shape, data_offsets: [begin, end]},
// "__metadata__"?: {string: string}}, then the byte buffer; offsets are relative to the buffer, the tensors tile
// it exactly (no gaps, no overlap, nothing after the last one), every value is little-endian.
import fs from 'node:fs';
import { OtfuseError } from '../errors';
import { excerpt, jsonErrorWhere, openForReads, READ_LIMITS } from '../io/read';
import { MAX_WHOLE_FILE_BYTES } from '../onnx/files';
import { bf16ToFloat, floatToBf16, floatToHalf, halfToFloat } from '../onnx/model';

export type StDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL' | 'U16' | 'U32' | 'U64' | 'F8_E4M3' | 'F8_E5M2';

const WIDTH: Record<StDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  U16: 2,
  U32: 4,
  U64: 8,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

/** The float dtypes a model's weights may come in (converted to float32 for the graph). */
export const WEIGHT_DTYPES: readonly StDtype[] = ['F32', 'F16', 'BF16'];

/** Largest header the reader accepts (the reference implementation allows 100 MB; a large LLM's is under 1 MB). */
const MAX_HEADER = READ_LIMITS.safetensorsHeader;

export interface StEntry {
  key: string;
  dtype: StDtype;
  shape: number[];
  /** The tensor's raw little-endian bytes (a view into the file buffer). */
  bytes: Uint8Array;
}

export interface StFile {
  file: string;
  /** Tensors in file order (by offset). */
  entries: StEntry[];
  metadata?: Record<string, string>;
}

/** Reads a safetensors file: a regular file (inside `within` when given), its declared header length checked
 * against the limit and the file size before anything else is read or parsed. */
export function readSafetensorsFile(file: string, within?: string): StFile {
  const f = openForReads(file, { code: 'BAD_MODEL', what: 'safetensors file', maxBytes: MAX_WHOLE_FILE_BYTES, within });
  try {
    const size = f.opened.size;
    if (size < 8) throw new OtfuseError('BAD_MODEL', `not a valid safetensors file: ${size} bytes, shorter than the 8-byte header length`, { file });
    const head = f.read(8, 0);
    const n64 = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
    if (n64 > BigInt(Math.min(MAX_HEADER, size - 8)))
      throw new OtfuseError(
        'BAD_MODEL',
        `not a valid safetensors file: header length ${n64} runs past the end of the file (${size} bytes) or exceeds ${MAX_HEADER}`,
        {
          file,
        },
      );
    return parseSafetensors(f.read(size, 0), file);
  } finally {
    f.close();
  }
}

export function parseSafetensors(bytes: Uint8Array, file: string): StFile {
  const bad = (why: string) => new OtfuseError('BAD_MODEL', `not a valid safetensors file: ${why}`, { file });
  if (bytes.length < 8) throw bad(`${bytes.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(Math.min(MAX_HEADER, bytes.length - 8)))
    throw bad(`header length ${n64} runs past the end of the file (${bytes.length} bytes) or exceeds ${MAX_HEADER}`);
  const n = Number(n64);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw bad('the header is not UTF-8 JSON (invalid UTF-8)');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    throw bad(`the header is not UTF-8 JSON${jsonErrorWhere(err, text)}`); // where, never what: no bytes of the file
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw bad('the header is not a JSON object');
  const count = Object.keys(header).length;
  if (count > READ_LIMITS.safetensorsTensors) throw bad(`the header describes ${count} tensors, more than the ${READ_LIMITS.safetensorsTensors} accepted`);
  const base = 8 + n;
  const bufferLength = bytes.length - base;
  const entries: StEntry[] = [];
  let metadata: Record<string, string> | undefined;
  for (const [key, raw] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (!raw || typeof raw !== 'object' || Array.isArray(raw) || Object.values(raw).some((v) => typeof v !== 'string'))
        throw bad('__metadata__ must map strings to strings');
      metadata = raw as Record<string, string>;
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!info || typeof info !== 'object') throw bad(`tensor '${excerpt(key, 120)}' has no description`);
    const dtype = info.dtype as StDtype;
    if (typeof dtype !== 'string' || !(dtype in WIDTH))
      throw bad(`tensor '${excerpt(key, 120)}' has unknown dtype ${excerpt(JSON.stringify(info.dtype) ?? 'undefined')}`);
    const shape = info.shape;
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0))
      throw bad(`tensor '${excerpt(key, 120)}' has a bad shape ${excerpt(shape)}`);
    const off = info.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || off.some((o) => !Number.isSafeInteger(o) || o < 0) || off[1] < off[0]) {
      throw bad(`tensor '${excerpt(key, 120)}' has bad data_offsets ${excerpt(off)}`);
    }
    const [begin, end] = off as [number, number];
    const expected = (shape as number[]).reduce((a, b) => a * b, 1) * WIDTH[dtype];
    if (end - begin !== expected)
      throw bad(`tensor '${excerpt(key, 120)}' (${dtype} ${excerpt(shape)}) needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    if (end > bufferLength) throw bad(`tensor '${excerpt(key, 120)}' ends at byte ${end} of a ${bufferLength}-byte buffer (truncated file?)`);
    entries.push({ key, dtype, shape: shape as number[], bytes: bytes.subarray(base + begin, base + end) });
  }
  // The tensors must tile the buffer: sorted by offset, each starts where the previous ended.
  const order = entries
    .map((e) => ({ e, begin: e.bytes.byteOffset - bytes.byteOffset - base }))
    .sort((a, b) => a.begin - b.begin || a.e.bytes.length - b.e.bytes.length);
  let at = 0;
  for (const { e, begin } of order) {
    if (begin !== at)
      throw bad(
        begin < at ? `tensor '${excerpt(e.key, 120)}' overlaps the previous tensor` : `a gap of ${begin - at} bytes before tensor '${excerpt(e.key, 120)}'`,
      );
    at = begin + e.bytes.length;
  }
  if (at !== bufferLength) throw bad(`${bufferLength - at} bytes after the last tensor`);
  return { file, entries: order.map((o) => o.e), metadata };
}

/** Float32 values of a float tensor (F32/F16/BF16/F64); other dtypes are refused, naming the key. */
export function toFloat32(e: StEntry, file: string): Float32Array {
  const count = e.shape.reduce((a, b) => a * b, 1);
  const view = new DataView(e.bytes.buffer, e.bytes.byteOffset, e.bytes.byteLength);
  const out = new Float32Array(count);
  switch (e.dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      break;
    case 'BF16':
      for (let i = 0; i < count; i++) out[i] = bf16ToFloat(view.getUint16(i * 2, true));
      break;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      break;
    default:
      throw new OtfuseError('UNSUPPORTED', `tensor '${e.key}' has dtype ${e.dtype}; model weights must be F32, F16 or BF16`, { file });
  }
  return out;
}

/** Little-endian bytes of float32 values in a float dtype (round to nearest even for F16/BF16). */
export function fromFloat32(data: Float32Array, dtype: StDtype, key: string): Uint8Array {
  const out = new Uint8Array(data.length * WIDTH[dtype]);
  const view = new DataView(out.buffer);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
      break;
    case 'F16':
      for (let i = 0; i < data.length; i++) view.setUint16(i * 2, floatToHalf(data[i]), true);
      break;
    case 'BF16':
      for (let i = 0; i < data.length; i++) view.setUint16(i * 2, floatToBf16(data[i]), true);
      break;
    case 'F64':
      for (let i = 0; i < data.length; i++) view.setFloat64(i * 8, data[i], true);
      break;
    default:
      throw new OtfuseError('INTERNAL', `cannot write tensor '${key}' as ${dtype}`);
  }
  return out;
}

type RawEntry = { key: string; dtype: StDtype; shape: number[]; bytes: Uint8Array };

/** The 8-byte length and the JSON header (tensors in the given order), padded with spaces so data starts 8-aligned. */
export function safetensorsHeader(entries: RawEntry[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const e of entries) {
    const expected = e.shape.reduce((a, b) => a * b, 1) * WIDTH[e.dtype];
    if (e.bytes.length !== expected) throw new OtfuseError('INTERNAL', `safetensors: '${e.key}' has ${e.bytes.length} bytes for ${e.dtype} [${e.shape}]`);
    header[e.key] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.bytes.length] };
    offset += e.bytes.length;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const h = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + h.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  return out;
}

/** A whole safetensors file in memory. */
export function encodeSafetensorsRaw(entries: RawEntry[], metadata?: Record<string, string>): Uint8Array {
  const header = safetensorsHeader(entries, metadata);
  const out = new Uint8Array(header.length + entries.reduce((n, e) => n + e.bytes.length, 0));
  out.set(header, 0);
  let p = header.length;
  for (const e of entries) {
    out.set(e.bytes, p);
    p += e.bytes.length;
  }
  return out;
}

/** Writes a safetensors file tensor by tensor (no second copy of the weights in memory); the caller makes it atomic. */
export function writeSafetensorsFile(file: string, entries: RawEntry[], metadata?: Record<string, string>): void {
  const fd = fs.openSync(file, 'w');
  try {
    const writeAll = (b: Uint8Array) => {
      for (let off = 0; off < b.length;) off += fs.writeSync(fd, b, off, b.length - off);
    };
    writeAll(safetensorsHeader(entries, metadata));
    for (const e of entries) writeAll(e.bytes);
  } finally {
    fs.closeSync(fd);
  }
}
