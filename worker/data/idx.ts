// IDX files (the MNIST family), raw or gzip-compressed, opened lazily: the header is read at once, the data
// on demand through a byte source (gzip is inflated incrementally, never whole).
import { OtfuseError } from '../errors';
import { FileSlice, InflatedSource, type ByteSource } from './source';

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

export interface LazyIdx {
  file: string;
  shape: number[];
  count: number;
  /** `count` bytes starting at element `start`. */
  elements(start: number, count: number): Uint8Array;
  close(): void;
}

/** Opens an IDX file: the header is checked (element type, dims) before anything of its declared size is read. */
export function openIdx(file: string): LazyIdx {
  const raw = FileSlice.open(file, 'IDX file');
  let source: ByteSource = raw;
  try {
    if (raw.size >= 2) {
      const magic = raw.read(0, 2);
      if (magic[0] === 0x1f && magic[1] === 0x8b) source = new InflatedSource(raw, 'gzip', Number.MAX_SAFE_INTEGER, 'gzip stream', file);
    }
    const head = source === raw && raw.size < 4 ? new Uint8Array(0) : source.read(0, 4);
    if (head.length < 4 || head[0] !== 0 || head[1] !== 0) throw new OtfuseError('BAD_DATA', 'not an IDX file (bad magic)', { file });
    if (head[2] !== 0x08) throw new OtfuseError('BAD_DATA', `IDX element type 0x${head[2].toString(16)} is not supported (only unsigned bytes)`, { file });
    const rank = head[3];
    if (rank < 1 || rank > 4) throw new OtfuseError('BAD_DATA', `IDX rank ${rank} is not supported`, { file });
    if (source === raw && raw.size < 4 + 4 * rank) throw new OtfuseError('BAD_DATA', 'truncated IDX header', { file });
    const dimBytes = source.read(4, 4 * rank);
    const view = new DataView(dimBytes.buffer, dimBytes.byteOffset, dimBytes.byteLength);
    const shape: number[] = [];
    for (let i = 0; i < rank; i++) shape.push(view.getUint32(4 * i, false));
    const start = 4 + 4 * rank;
    const count = shape.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(count)) throw new OtfuseError('BAD_DATA', `IDX shape [${shape}] is impossible`, { file });
    if (source === raw) {
      if (raw.size - start < count) throw new OtfuseError('BAD_DATA', `truncated IDX file: ${raw.size - start} bytes for shape [${shape}]`, { file });
    } else {
      (source as InflatedSource).size = start + count;
    }
    const src = source;
    return { file, shape, count, elements: (s, n) => src.read(start + s, n), close: () => src.close() };
  } catch (err) {
    source.close();
    raw.close();
    throw err;
  }
}

/** Reads a whole IDX file (small files: labels, tests); at most `maxBytes` of data. */
export function readIdx(file: string, maxBytes = 2 ** 30): IdxArray {
  const idx = openIdx(file);
  try {
    if (idx.count > maxBytes) throw new OtfuseError('BAD_DATA', `IDX data of ${idx.count} bytes is too large to read whole (limit ${maxBytes})`, { file });
    return { shape: idx.shape, data: idx.elements(0, idx.count) };
  } finally {
    idx.close();
  }
}
