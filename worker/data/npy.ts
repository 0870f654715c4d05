// NumPy .npy / .npz reading (and .npy writing), enough for datasets, fixtures and maps.
import zlib from 'node:zlib';
import { OtfuseError } from '../errors';
import { closeQuietly, openRegular, readExactly, readRegularFile, type OpenedFile } from '../onnx/files';
import { FileSlice, InflatedSource, type ByteSource } from './source';

export type NpyDtype = 'f4' | 'f8' | 'i8' | 'i4' | 'u1' | 'i1' | 'b1' | 'u2' | 'i2' | 'f2';
export type NpyData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int8Array | Uint16Array | Int16Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
}

const CTORS: Record<NpyDtype, { new (buf: ArrayBuffer, offset: number, length: number): NpyData; BYTES_PER_ELEMENT: number }> = {
  f4: Float32Array,
  f8: Float64Array,
  i8: BigInt64Array,
  i4: Int32Array,
  u1: Uint8Array,
  i1: Int8Array,
  b1: Uint8Array,
  u2: Uint16Array,
  i2: Int16Array,
  f2: Uint16Array,
};

export interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
  count: number;
  /** Offset of the data from the start of the .npy payload. */
  dataStart: number;
  byteLength: number;
}

/** The longest .npy header accepted (numpy writes < 1 KiB; a hostile one could claim 4 GiB). */
const MAX_HEADER_BYTES = 1 << 20;

/** Parses a .npy header from the payload's first bytes (`readMore` fetches more when the header is longer). */
export function parseNpyHeader(read: (position: number, length: number) => Uint8Array, size: number, label: string, file = label): NpyHeader {
  if (size < 10) throw new OtfuseError('BAD_DATA', `${labelName(label, file)}not a .npy array (too short)`, { file });
  const pre = read(0, Math.min(size, 12));
  const magic = String.fromCharCode(...pre.subarray(0, 6));
  if (magic !== '\x93NUMPY') throw new OtfuseError('BAD_DATA', `${labelName(label, file)}not a .npy array (bad magic)`, { file });
  const major = pre[6];
  const view = new DataView(pre.buffer, pre.byteOffset, pre.byteLength);
  if (major !== 1 && pre.length < 12) throw new OtfuseError('BAD_DATA', `${labelName(label, file)}truncated .npy header`, { file });
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  if (headerLen > MAX_HEADER_BYTES || headerStart + headerLen > size) {
    throw new OtfuseError('BAD_DATA', `${labelName(label, file)}.npy header of ${headerLen} bytes does not fit (${size} bytes; truncated?)`, { file });
  }
  const header = Buffer.from(read(headerStart, headerLen)).toString('latin1');
  const descr = /'descr':\s*'([<>|=])(\w\d?)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shapeMatch = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeMatch)
    throw new OtfuseError('BAD_DATA', `${labelName(label, file)}unreadable .npy header: ${header.trim().slice(0, 200)}`, { file });
  if (descr[1] === '>') throw new OtfuseError('BAD_DATA', `${labelName(label, file)}big-endian arrays are not supported`, { file });
  if (fortran[1] === 'True')
    throw new OtfuseError('BAD_DATA', `${labelName(label, file)}Fortran-ordered arrays are not supported; save with np.ascontiguousarray`, { file });
  const dtype = descr[2] as NpyDtype;
  const ctor = CTORS[dtype];
  if (!Object.prototype.hasOwnProperty.call(CTORS, dtype) || !ctor)
    throw new OtfuseError('BAD_DATA', `${labelName(label, file)}unsupported dtype '${descr[1]}${descr[2]}'`, { file });
  const shape = shapeMatch[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0))
    throw new OtfuseError('BAD_DATA', `${labelName(label, file)}bad shape (${shapeMatch[1]})`, { file });
  const count = shape.reduce((a, b) => a * b, 1);
  const byteLength = count * ctor.BYTES_PER_ELEMENT;
  const dataStart = headerStart + headerLen;
  // Checked against what the container holds before anything of that size is allocated.
  if (!Number.isSafeInteger(byteLength) || size - dataStart < byteLength) {
    throw new OtfuseError(
      'BAD_DATA',
      `${labelName(label, file)}truncated: header says ${count} elements of ${dtype} [${shape}] but only ${Math.max(0, size - dataStart)} bytes follow`,
      { file },
    );
  }
  return { dtype, shape, count, dataStart, byteLength };
}

function labelName(label: string, file: string): string {
  return label === file ? '' : `${label.startsWith(file) ? label.slice(file.length + 1) : label}: `;
}

/** Parses one .npy payload. `label` names the file (and array) in errors. */
export function parseNpy(bytes: Uint8Array, label: string): NpyArray {
  const h = parseNpyHeader((p, n) => bytes.subarray(p, p + n), bytes.byteLength, label);
  // Copy into a fresh, aligned buffer.
  const copy = new Uint8Array(h.byteLength);
  copy.set(bytes.subarray(h.dataStart, h.dataStart + h.byteLength));
  return { dtype: h.dtype, shape: h.shape, data: new CTORS[h.dtype](copy.buffer, 0, h.count) };
}

/** One array of a .npz, read on demand: elements are fetched from the member's byte source. */
export class LazyNpy {
  constructor(
    readonly name: string,
    readonly header: NpyHeader,
    private readonly source: ByteSource,
    readonly label: string,
  ) {}
  get dtype(): NpyDtype {
    return this.header.dtype;
  }
  get shape(): number[] {
    return this.header.shape;
  }
  get bytesPerElement(): number {
    return CTORS[this.header.dtype].BYTES_PER_ELEMENT;
  }
  /** `count` elements starting at element `start`. */
  elements(start: number, count: number): NpyData {
    const w = this.bytesPerElement;
    const bytes = this.source.read(this.header.dataStart + start * w, count * w);
    return new CTORS[this.header.dtype](bytes.buffer, bytes.byteOffset, count);
  }
  close(): void {
    this.source.close();
  }
}

export function readNpy(file: string): NpyArray {
  return parseNpy(readRegularFile(file, 'BAD_DATA', '.npy file'), file);
}

export interface NpzFile {
  arrays: Record<string, LazyNpy>;
  /** Closes the file (and any spill of a member). */
  close(): void;
}

/** Opens every array of a .npz lazily (zip of .npy; stored or deflated): nothing but headers is read. */
export function openNpz(file: string): NpzFile {
  const opened = openRegular(file, 'BAD_DATA', 'dataset');
  const out: Record<string, LazyNpy> = Object.create(null) as Record<string, LazyNpy>;
  try {
    for (const entry of listZip(opened, file)) {
      if (!entry.name.endsWith('.npy')) continue;
      const name = entry.name.slice(0, -4);
      const label = `${file}:${name}`;
      const source = entry.open();
      const header = parseNpyHeader((p, n) => source.read(p, n), source.size, label, file);
      out[name] = new LazyNpy(name, header, source, label);
    }
  } catch (err) {
    for (const a of Object.values(out)) a.close();
    closeQuietly(opened);
    throw err;
  }
  return {
    arrays: out,
    close: () => {
      for (const a of Object.values(out)) a.close();
      closeQuietly(opened);
    },
  };
}

/** Reads every array of a .npz whole (for small files: fixtures, tests); at most `maxBytes` in total. */
export function readNpz(file: string, maxBytes = 2 ** 30): Record<string, NpyArray> {
  const npz = openNpz(file);
  try {
    let total = 0;
    const out: Record<string, NpyArray> = {};
    for (const [name, a] of Object.entries(npz.arrays)) {
      total += a.header.byteLength;
      if (total > maxBytes) throw new OtfuseError('BAD_DATA', `the arrays hold more than ${maxBytes} bytes; too large to read whole`, { file });
      out[name] = { dtype: a.dtype, shape: a.shape, data: a.elements(0, a.header.count) };
    }
    return out;
  } finally {
    npz.close();
  }
}

interface ZipEntry {
  name: string;
  open(): ByteSource;
}

const MAX_ZIP_ENTRIES = 10_000;

function listZip(opened: OpenedFile, file: string): ZipEntry[] {
  const size = opened.size;
  const tailLength = Math.min(size, 65557);
  const tail = readExactly(opened, tailLength, size - tailLength, 'BAD_DATA', 'zip directory');
  const tview = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  // End of central directory: scan backwards for its signature.
  let eocd = -1;
  for (let i = tail.byteLength - 22; i >= 0; i--) {
    if (tview.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new OtfuseError('BAD_DATA', 'not a .npz (zip) file or truncated', { file });
  let count = tview.getUint16(eocd + 10, true);
  let cdSize = tview.getUint32(eocd + 12, true);
  let cdOffset = tview.getUint32(eocd + 16, true);
  // zip64: numpy writes it for large arrays.
  if (cdOffset === 0xffffffff || count === 0xffff || cdSize === 0xffffffff) {
    const loc = eocd - 20;
    if (loc >= 0 && tview.getUint32(loc, true) === 0x07064b50) {
      const z64 = Number(tview.getBigUint64(loc + 8, true));
      const rec = readExactly(opened, 56, z64, 'BAD_DATA', 'zip64 directory');
      const rview = new DataView(rec.buffer);
      if (rview.getUint32(0, true) !== 0x06064b50) throw new OtfuseError('BAD_DATA', 'corrupt zip64 directory', { file });
      count = Number(rview.getBigUint64(32, true));
      cdSize = Number(rview.getBigUint64(40, true));
      cdOffset = Number(rview.getBigUint64(48, true));
    }
  }
  if (count > MAX_ZIP_ENTRIES) throw new OtfuseError('BAD_DATA', `the zip directory lists ${count} entries (at most ${MAX_ZIP_ENTRIES} are read)`, { file });
  const cd = readExactly(opened, cdSize, cdOffset, 'BAD_DATA', 'zip central directory');
  const view = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const entries: ZipEntry[] = [];
  let p = 0;
  const corrupt = () => new OtfuseError('BAD_DATA', 'corrupt zip central directory', { file });
  for (let k = 0; k < count; k++) {
    if (p + 46 > cd.byteLength || view.getUint32(p, true) !== 0x02014b50) throw corrupt();
    const flags = view.getUint16(p + 8, true);
    const method = view.getUint16(p + 10, true);
    let compSize = view.getUint32(p + 20, true);
    let uncompSize = view.getUint32(p + 24, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    let localOffset = view.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen + commentLen > cd.byteLength) throw corrupt();
    const name = Buffer.from(cd.subarray(p + 46, p + 46 + nameLen)).toString('utf8');
    // zip64 extra field carries the real sizes/offset.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = view.getUint16(e, true);
      const fieldSize = view.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        const take = () => {
          if (q + 8 > extraEnd) throw corrupt();
          const v = Number(view.getBigUint64(q, true));
          q += 8;
          return v;
        };
        if (uncompSize === 0xffffffff) uncompSize = take();
        if (compSize === 0xffffffff) compSize = take();
        if (localOffset === 0xffffffff) localOffset = take();
      }
      e += 4 + fieldSize;
    }
    p = extraEnd + commentLen;
    const entryName = name;
    entries.push({
      name,
      open: () => {
        if (flags & 1) throw new OtfuseError('BAD_DATA', `zip entry '${entryName}' is encrypted`, { file });
        const local = readExactly(opened, 30, localOffset, 'BAD_DATA', `zip entry '${entryName}'`);
        const lview = new DataView(local.buffer);
        if (lview.getUint32(0, true) !== 0x04034b50) throw new OtfuseError('BAD_DATA', `corrupt zip entry '${entryName}'`, { file });
        const start = localOffset + 30 + lview.getUint16(26, true) + lview.getUint16(28, true);
        const slice = new FileSlice(opened, start, compSize, `zip entry '${entryName}'`);
        if (method === 0) return slice;
        if (method === 8) return new InflatedSource(slice, 'deflate', uncompSize, `${file}:${entryName}`.slice(file.length + 1), file);
        throw new OtfuseError('BAD_DATA', `zip entry '${entryName}' uses unsupported compression ${method}`, { file });
      },
    });
  }
  return entries;
}

const DESCR: Partial<Record<string, string>> = {
  Float32Array: '<f4',
  Float64Array: '<f8',
  BigInt64Array: '<i8',
  Int32Array: '<i4',
  Uint8Array: '|u1',
  Int8Array: '|i1',
  Uint16Array: '<u2',
  Int16Array: '<i2',
};

/** Serialises an array as .npy (version 1). */
export function encodeNpy(data: NpyData, shape: number[]): Uint8Array {
  const descr = DESCR[data.constructor.name];
  if (!descr) throw new Error(`cannot write ${data.constructor.name} as .npy`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/** Writes arrays as an uncompressed .npz (a zip of .npy files), readable by numpy.load. */
export function encodeNpz(arrays: Record<string, { data: NpyData; shape: number[] }>): Uint8Array {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, array] of Object.entries(arrays)) {
    const body = Buffer.from(encodeNpy(array.data, array.shape));
    const fileName = Buffer.from(`${name}.npy`, 'utf8');
    const crc = zlib.crc32(body);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(body.length, 22);
    local.writeUInt16LE(fileName.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(body.length, 24);
    central.writeUInt16LE(fileName.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, fileName, body);
    centrals.push(central, fileName);
    offset += local.length + fileName.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(arrays).length, 8);
  end.writeUInt16LE(Object.keys(arrays).length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return new Uint8Array(Buffer.concat([...locals, cd, end]));
}
