// Transport maps of a run, kept out of memory as they are solved (issue 16): a ViT-B alignment makes 1.3 GB of
// float64 plans. Each map is converted once to its stored form (n·P: rows sum to 1; float32, or float16 when
// asked) and, when large, appended to a spool file in the temp folder, leaving its MapRecord with an empty plan;
// small maps stay in memory untouched (tests and views read them). `write` streams the spool into
// maps.safetensors without holding it.
// float16 precision: relative error ≤ 2⁻¹¹ ≈ 4.9e-4 per entry for values ≥ 6.1e-5 (normal range); smaller
// entries are subnormal (absolute error ≤ 3e-8) and entries below 3e-8 become 0 — of n·P, whose rows sum to 1.
import fs from 'node:fs';
import { floatToHalf } from '../onnx/model';
import { tempPathFor } from '../onnx/atomic';
import { Spool } from '../onnx/spool';
import type { MapRecord } from './align';
import { BlockMeans, THUMB_PREFIX, THUMB_SIDE } from './mapthumbs';
import { DETAIL_PREFIX, DETAIL_SIDE, hasDetail, TOP_K, TOP_MASS_PREFIX, TOP_PREFIX, TopMatchesStream } from './mapdetail';

export type MapDtype = 'F32' | 'F16';

/** Maps with more entries than this are spooled to disk as they arrive. */
export const SPOOL_ABOVE_ENTRIES = 1 << 18;

interface Entry {
  key: string;
  shape: [number, number];
  /** In memory (small maps), or where it lies in the spool. */
  bytes?: Uint8Array;
  offset?: number;
  length: number;
}

export class MapStore {
  private readonly entries: Entry[] = [];
  private readonly spool = new Spool('otfuse-maps.spool');

  constructor(
    readonly dtype: MapDtype = 'F32',
    private readonly spoolAbove = SPOOL_ABOVE_ENTRIES,
  ) {}

  /** Stores record `r` of model `k` under `m<k>/<name>`; returns the record to keep (plan dropped if spooled). */
  add(k: number, r: MapRecord): MapRecord {
    const { n, m, plan } = r.map;
    const bytes = encode(plan, n, this.dtype);
    const key = `m${k}/${r.name}`;
    if (plan.length <= this.spoolAbove) {
      this.entries.push({ key, shape: [n, m], bytes, length: bytes.length });
      return r;
    }
    this.entries.push({ key, shape: [n, m], offset: this.spool.append(bytes), length: bytes.length });
    return { ...r, map: { n, m, plan: new Float64Array(0) } };
  }

  keys(): string[] {
    return this.entries.map((e) => e.key);
  }

  /** Total bytes of the stored maps. */
  get bytes(): number {
    return this.entries.reduce((s, e) => s + e.length, 0);
  }

  /** Writes a safetensors file (header, then every map in order, each large one followed by its detail and top-3
   * table: mapdetail.ts, then the thumbnails: mapthumbs.ts) streaming from the spool; atomic. A float32 map larger
   * than THUMB_SIDE on a side gets `thumb/<key>`, its block means, made while it streams past, so that the panel
   * opens a run without reading its maps; one larger than DETAIL_SIDE also gets the detail map and top-3 table the
   * panel shows for it (written right after it: one map's accumulators held at a time). */
  write(target: string, metadata: Record<string, string>): void {
    const header: Record<string, unknown> = { __metadata__: { ...metadata, dtype: this.dtype } };
    const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
    const derived = this.dtype === 'F32' && littleEndian;
    const details = new Set<Entry>();
    let offset = 0;
    const place = (key: string, dtype: string, shape: number[], bytes: number) => {
      header[key] = { dtype, shape, data_offsets: [offset, offset + bytes] };
      offset += bytes;
    };
    for (const e of this.entries) {
      place(e.key, this.dtype, e.shape, e.length);
      const [n, m] = e.shape;
      if (!derived || !hasDetail(n, m)) continue;
      details.add(e);
      const [dr, dc] = [Math.min(n, DETAIL_SIDE), Math.min(m, DETAIL_SIDE)];
      const k = Math.min(TOP_K, m);
      place(DETAIL_PREFIX + e.key, 'F32', [dr, dc], 4 * dr * dc);
      place(TOP_PREFIX + e.key, 'I32', [n, k], 4 * n * k);
      place(TOP_MASS_PREFIX + e.key, 'F64', [n, k], 8 * n * k);
    }
    const thumbs = new Map<Entry, BlockMeans>();
    for (const e of this.entries) {
      const [n, m] = e.shape;
      if (!derived || (n <= THUMB_SIDE && m <= THUMB_SIDE)) continue;
      const t = new BlockMeans(n, m);
      thumbs.set(e, t);
      place(THUMB_PREFIX + e.key, 'F32', [t.outRows, t.outCols], 4 * t.outRows * t.outCols);
    }
    const f32 = (b: Uint8Array) => new Float32Array(b.buffer, b.byteOffset, b.length >> 2);
    const bytesOf = (a: Float32Array | Int32Array | Float64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    let json = JSON.stringify(header);
    while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
    const head = Buffer.alloc(8 + Buffer.byteLength(json));
    head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
    head.write(json, 8, 'utf8');
    const tmp = tempPathFor(target);
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, head);
      const chunk = Buffer.alloc(8 << 20);
      for (const e of this.entries) {
        const [n, m] = e.shape;
        const thumb = thumbs.get(e);
        const detail = details.has(e) ? new BlockMeans(n, m, DETAIL_SIDE) : undefined;
        const top = details.has(e) ? new TopMatchesStream(n, m, TOP_K) : undefined;
        const feed = (values: Float32Array) => {
          thumb?.add(values);
          detail?.add(values);
          top?.add(values);
        };
        if (e.bytes) {
          fs.writeSync(fd, e.bytes);
          if (thumb || detail) feed(f32(e.bytes.byteOffset % 4 ? e.bytes.slice() : e.bytes));
        } else {
          for (let done = 0; done < e.length;) {
            const want = Math.min(chunk.length, e.length - done);
            this.spool.readInto(chunk.subarray(0, want), e.offset! + done, e.key);
            fs.writeSync(fd, chunk, 0, want);
            if (thumb || detail) feed(f32(chunk.subarray(0, want)));
            done += want;
          }
        }
        if (detail && top) {
          const t = top.result();
          for (const a of [detail.result(), t.cols, t.mass]) fs.writeSync(fd, bytesOf(a));
        }
      }
      for (const t of thumbs.values()) fs.writeSync(fd, bytesOf(t.result()));
      fs.closeSync(fd);
      fs.renameSync(tmp, target);
    } catch (err) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already closed */
      }
      fs.rmSync(tmp, { force: true });
      throw err;
    }
  }

  release(): void {
    this.spool.release();
  }
}

/** n·P as little-endian F32 or F16 bytes. */
function encode(plan: Float64Array, n: number, dtype: MapDtype): Uint8Array {
  if (dtype === 'F16') {
    const out = new Uint16Array(plan.length);
    for (let i = 0; i < plan.length; i++) out[i] = floatToHalf(plan[i] * n);
    return littleEndianBytes(out);
  }
  const out = new Float32Array(plan.length);
  for (let i = 0; i < plan.length; i++) out[i] = plan[i] * n;
  return littleEndianBytes(out);
}

function littleEndianBytes(a: Float32Array | Uint16Array): Uint8Array {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) return bytes;
  const swapped = new Uint8Array(bytes.length),
    w = a.BYTES_PER_ELEMENT;
  for (let i = 0; i < bytes.length; i += w) for (let b = 0; b < w; b++) swapped[i + b] = bytes[i + w - 1 - b];
  return swapped;
}
