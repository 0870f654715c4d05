// Reads transport maps from maps.safetensors (8-byte little-endian header length N, N bytes of JSON header,
// then raw little-endian data) and down-samples them for the canvas. Pure functions plus one file reader.
import fs from 'node:fs';
import type { MapPayload } from '../contracts/protocol';

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
  private constructor(private readonly file: string, readonly header: SafetensorsHeader, private readonly dataStart: number) {}

  static open(file: string): MapsFile {
    const fd = fs.openSync(file, 'r');
    try {
      const lenBuf = Buffer.alloc(8);
      fs.readSync(fd, lenBuf, 0, 8, 0);
      const n = Number(lenBuf.readBigUInt64LE(0));
      const size = fs.fstatSync(fd).size;
      if (n <= 0 || 8 + n > size) throw new Error(`${file}: safetensors header length ${n} does not fit the file (${size} bytes)`);
      const head = Buffer.alloc(8 + n);
      fs.readSync(fd, head, 0, 8 + n, 0);
      const { header, dataStart } = parseHeader(head);
      return new MapsFile(file, header, dataStart);
    } finally {
      fs.closeSync(fd);
    }
  }

  private locate(key: string) {
    const entry = this.header[key];
    if (!entry) throw new Error(`${this.file}: no tensor '${key}'`);
    if (entry.dtype !== 'F32') throw new Error(`${this.file}: tensor '${key}' is ${entry.dtype}, expected F32`);
    const [start, end] = entry.data_offsets;
    const rows = entry.shape[0] ?? 1;
    const cols = entry.shape.length > 1 ? entry.shape[1] : 1;
    if (end - start !== rows * cols * 4) throw new Error(`${this.file}: tensor '${key}' has ${end - start} bytes for shape [${entry.shape}]`);
    return { rows, cols, position: this.dataStart + start, data: new Float32Array(rows * cols) };
  }

  read(key: string): { rows: number; cols: number; data: Float32Array } {
    const { rows, cols, position, data } = this.locate(key);
    const bytes = new Uint8Array(data.buffer); // little-endian host (x64, arm64), as the file
    const fd = fs.openSync(this.file, 'r');
    try { fs.readSync(fd, bytes, 0, bytes.length, position); } finally { fs.closeSync(fd); }
    return { rows, cols, data };
  }

  /** Like read(), without blocking the extension host on a large map. */
  async readAsync(key: string): Promise<{ rows: number; cols: number; data: Float32Array }> {
    const { rows, cols, position, data } = this.locate(key);
    const handle = await fs.promises.open(this.file, 'r');
    try { await handle.read(new Uint8Array(data.buffer), 0, data.byteLength, position); } finally { await handle.close(); }
    return { rows, cols, data };
  }
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
  for (const v of out) { if (v < min) min = v; if (v > max) max = v; }
  if (!Number.isFinite(min)) { min = 0; max = 0; }
  return { tensor, rows, cols, outRows, outCols, data: out, min, max };
}
