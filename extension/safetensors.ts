// Reads transport maps from maps.safetensors (8-byte little-endian header length N, N bytes of JSON header,
// then raw little-endian data) and down-samples them for the canvas. Pure functions plus one file reader.
// A maps file comes from a workspace that may be untrusted: every header entry is checked against the file size
// before anything is allocated; the panels read and down-sample maps on worker threads (extension/mapThread.ts), never on
// the extension host's.
import fs from 'node:fs';
import type { MapPayload } from '../contracts/protocol';

/** The largest map read (elements): 8192² (256 MiB of float32); real maps are at most a few thousand per side. */
export const MAX_MAP_ELEMENTS = 8192 * 8192;
/** The longest JSON header read. */
const MAX_HEADER_BYTES = 16 * 2 ** 20;

export interface TensorEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export type SafetensorsHeader = Record<string, TensorEntry>;

export function parseHeader(bytes: Uint8Array): { header: SafetensorsHeader; dataStart: number } {
  if (bytes.length < 8) throw new Error('safetensors file is too short');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n <= 0 || 8 + n > bytes.length) throw new Error(`safetensors header length ${n} does not fit the file`);
  const json = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')) as Record<string, unknown>;
  const header: SafetensorsHeader = {};
  for (const [key, value] of Object.entries(json)) if (key !== '__metadata__') header[key] = value as TensorEntry;
  return { header, dataStart: 8 + n };
}

/** Opens a maps file and reads tensors one at a time (a 3072×3072 map is 36 MB: read only what is shown). */
export class MapsFile {
  private constructor(
    private readonly file: string,
    readonly header: SafetensorsHeader,
    private readonly dataStart: number,
  ) {}

  private size = 0;
  /** The file this header was read from (size, times, inode: a rewrite or a rename over it changes it). */
  identity = '';

  /** The file's parsed header, from a small cache when the file is unchanged (same path, size, mtime, ctime,
   * inode): a switch or a run opened again parses no header. */
  static cached(file: string): MapsFile {
    const st = fs.statSync(file);
    const hit = headers.get(file);
    if (hit && hit.identity === identityOf(st)) {
      headers.delete(file); // most recently used last
      headers.set(file, hit);
      return hit;
    }
    if (hit) {
      headers.delete(file);
      headerBytes -= hit.headerBytes;
    }
    const maps = MapsFile.open(file);
    headers.set(file, maps);
    headerBytes += maps.headerBytes;
    for (const [key, old] of headers) {
      if (headers.size <= MAX_CACHED_HEADERS && headerBytes <= MAX_CACHED_HEADER_BYTES) break;
      if (old === maps) continue;
      headers.delete(key);
      headerBytes -= old.headerBytes;
    }
    return maps;
  }

  /** Bytes of the header (what the header cache counts). */
  get headerBytes(): number {
    return this.dataStart;
  }

  static open(file: string): MapsFile {
    // Non-blocking open + regular-file check: a FIFO or device named maps.safetensors cannot hang the host.
    const fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new Error(`${file}: not a regular file`);
      const size = st.size;
      if (size < 8) throw new Error(`${file}: safetensors file is too short (${size} bytes)`);
      const lenBuf = Buffer.alloc(8);
      fs.readSync(fd, lenBuf, 0, 8, 0);
      const n = Number(lenBuf.readBigUInt64LE(0));
      if (n <= 0 || n > MAX_HEADER_BYTES || 8 + n > size) throw new Error(`${file}: safetensors header length ${n} does not fit the file (${size} bytes)`);
      const head = Buffer.alloc(8 + n);
      if (fs.readSync(fd, head, 0, 8 + n, 0) !== 8 + n) throw new Error(`${file}: short read of the safetensors header`);
      let parsed: ReturnType<typeof parseHeader>;
      try {
        parsed = parseHeader(head);
      } catch (err) {
        // JSON.parse's message quotes the header's bytes, not the file: name the file instead.
        if (err instanceof SyntaxError) throw new Error(`${file}: the safetensors header is not valid JSON`, { cause: err });
        throw err;
      }
      const { header, dataStart } = parsed;
      const maps = new MapsFile(file, header, dataStart);
      maps.size = size;
      maps.identity = identityOf(st);
      for (const key of Object.keys(header)) maps.check(key);
      return maps;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Validates one entry against the file: dtype, shape, offsets inside the data section, bytes = shape. */
  private check(key: string): { rows: number; cols: number; position: number; bytes: number } {
    const entry = this.header[key] as Partial<TensorEntry> | undefined;
    if (!entry || typeof entry !== 'object') throw new Error(`${this.file}: no tensor '${key}'`);
    const bad = (why: string) => new Error(`${this.file}: tensor '${key}' ${why}`);
    if (!Array.isArray(entry.shape) || entry.shape.length > 2 || entry.shape.some((d) => !Number.isSafeInteger(d) || d < 0))
      throw bad(`has an invalid shape ${JSON.stringify(entry.shape)}`);
    const offsets = entry.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1])
      throw bad(`has invalid data_offsets ${JSON.stringify(offsets)}`);
    const [start, end] = offsets;
    if (this.dataStart + end > this.size) throw bad(`data [${start}, ${end}) lies past the end of the file (${this.size - this.dataStart} data bytes)`);
    const rows = entry.shape[0] ?? 1;
    const cols = entry.shape.length > 1 ? entry.shape[1] : 1;
    const width =
      entry.dtype === 'F32' || entry.dtype === 'I32'
        ? 4
        : entry.dtype === 'F64' || entry.dtype === 'I64'
          ? 8
          : entry.dtype === 'F16' || entry.dtype === 'BF16'
            ? 2
            : 0;
    if (width && end - start !== rows * cols * width) throw bad(`has ${end - start} bytes for shape [${entry.shape}] of ${entry.dtype}`);
    return { rows, cols, position: this.dataStart + start, bytes: end - start };
  }

  /** Where tensor `key` of `dtype` lies in the file (validated), or undefined when the file has no such tensor of
   * that type. */
  tensorAt(key: string, dtype: string): { rows: number; cols: number; position: number; bytes: number } | undefined {
    if (!this.header[key] || this.header[key].dtype !== dtype) return undefined;
    return this.check(key);
  }

  /** Where float32 map `key` lies in the file, validated (for a reader on another thread: extension/mapThread.ts). */
  target(key: string): { rows: number; cols: number; position: number } {
    const { rows, cols, position } = this.check(key);
    const entry = this.header[key];
    if (entry.dtype !== 'F32') throw new Error(`${this.file}: tensor '${key}' is ${entry.dtype}, expected F32`);
    if (rows * cols > MAX_MAP_ELEMENTS) throw new Error(`${this.file}: tensor '${key}' of [${rows}, ${cols}] is larger than a transport map can be`);
    return { rows, cols, position };
  }

  private locate(key: string) {
    const { rows, cols, position } = this.target(key);
    return { rows, cols, position, data: new Float32Array(rows * cols) };
  }

  read(key: string): { rows: number; cols: number; data: Float32Array } {
    const { rows, cols, position, data } = this.locate(key);
    const bytes = new Uint8Array(data.buffer); // little-endian host (x64, arm64), as the file
    const fd = fs.openSync(this.file, 'r');
    try {
      if (fs.readSync(fd, bytes, 0, bytes.length, position) !== bytes.length) throw new Error(`${this.file}: tensor '${key}' is truncated`);
    } finally {
      fs.closeSync(fd);
    }
    return { rows, cols, data };
  }

  /** Like read(), without blocking the extension host on a large map. */
  async readAsync(key: string): Promise<{ rows: number; cols: number; data: Float32Array }> {
    const { rows, cols, position, data } = this.locate(key);
    const handle = await fs.promises.open(this.file, 'r');
    try {
      const { bytesRead } = await handle.read(new Uint8Array(data.buffer), 0, data.byteLength, position);
      if (bytesRead !== data.byteLength) throw new Error(`${this.file}: tensor '${key}' is truncated`);
    } finally {
      await handle.close();
    }
    return { rows, cols, data };
  }
}

/** At most this many headers are cached (and at most MAX_CACHED_HEADER_BYTES of them). */
const MAX_CACHED_HEADERS = 32;
const MAX_CACHED_HEADER_BYTES = 16 * 2 ** 20;
const headers = new Map<string, MapsFile>();
let headerBytes = 0;

/** Forgets the cached headers (tests). */
export function clearHeaderCache(): void {
  headers.clear();
  headerBytes = 0;
}

/** What the header cache compares (a file rewritten, or renamed over, differs). */
export function identityOf(st: fs.Stats): string {
  return `${st.size}|${st.mtimeMs}|${st.ctimeMs}|${st.ino}|${st.dev}`;
}

/** The smallest and largest of a map's values (0 / 0 when it has none). */
export function valueRange(data: Float32Array): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const v of data) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return Number.isFinite(min) ? { min, max } : { min: 0, max: 0 };
}

/** Block-mean down-sampling of a rows×cols map to at most maxSide×maxSide (exact copy when it already fits). */
export function downsample(tensor: string, rows: number, cols: number, data: Float32Array, maxSide: number): MapPayload {
  const outRows = Math.min(rows, maxSide);
  const outCols = Math.min(cols, maxSide);
  let out: Float32Array;
  if (outRows === rows && outCols === cols) {
    out = Float32Array.from(data);
  } else {
    out = new Float32Array(outRows * outCols);
    const counts = new Uint32Array(outRows * outCols);
    for (let i = 0; i < rows; i++) {
      const oi = Math.floor((i * outRows) / rows) * outCols;
      for (let j = 0; j < cols; j++) {
        const o = oi + Math.floor((j * outCols) / cols);
        out[o] += data[i * cols + j];
        counts[o]++;
      }
    }
    for (let k = 0; k < out.length; k++) out[k] = counts[k] ? out[k] / counts[k] : 0;
  }
  let min = Infinity;
  let max = -Infinity;
  for (const v of out) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!Number.isFinite(min)) {
    min = 0;
    max = 0;
  }
  return { tensor, rows, cols, outRows, outCols, data: out, min, max };
}
