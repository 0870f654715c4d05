// NumPy .npy / .npz reading (and .npy writing), enough for datasets, fixtures and maps.
import fs from 'node:fs';
import zlib from 'node:zlib';
import { OtfuseError } from '../errors';

export type NpyDtype = 'f4' | 'f8' | 'i8' | 'i4' | 'u1' | 'i1' | 'b1' | 'u2' | 'i2' | 'f2';
export type NpyData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int8Array | Uint16Array | Int16Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
}

const CTORS: Record<NpyDtype, { new (buf: ArrayBuffer, offset: number, length: number): NpyData; BYTES_PER_ELEMENT: number }> = {
  f4: Float32Array, f8: Float64Array, i8: BigInt64Array, i4: Int32Array, u1: Uint8Array, i1: Int8Array, b1: Uint8Array,
  u2: Uint16Array, i2: Int16Array, f2: Uint16Array,
};

/** Parses one .npy payload. `label` names the file (and array) in errors. */
export function parseNpy(bytes: Uint8Array, label: string): NpyArray {
  const magic = String.fromCharCode(...bytes.subarray(0, 6));
  if (magic !== '\x93NUMPY') throw new OtfuseError('BAD_DATA', 'not a .npy array (bad magic)', { file: label });
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = Buffer.from(bytes.subarray(headerStart, headerStart + headerLen)).toString('latin1');
  const descr = /'descr':\s*'([<>|=])(\w\d?)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shapeMatch = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeMatch) throw new OtfuseError('BAD_DATA', `unreadable .npy header: ${header.trim()}`, { file: label });
  if (descr[1] === '>') throw new OtfuseError('BAD_DATA', 'big-endian arrays are not supported', { file: label });
  if (fortran[1] === 'True') throw new OtfuseError('BAD_DATA', 'Fortran-ordered arrays are not supported; save with np.ascontiguousarray', { file: label });
  const dtype = descr[2] as NpyDtype;
  const ctor = CTORS[dtype];
  if (!ctor) throw new OtfuseError('BAD_DATA', `unsupported dtype '${descr[1]}${descr[2]}'`, { file: label });
  const shape = shapeMatch[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = headerStart + headerLen;
  const byteLength = count * ctor.BYTES_PER_ELEMENT;
  if (bytes.byteLength - dataStart < byteLength) {
    throw new OtfuseError('BAD_DATA', `truncated: header says ${count} elements of ${dtype} but only ${bytes.byteLength - dataStart} bytes follow`, { file: label });
  }
  // Copy into a fresh, aligned buffer.
  const copy = new Uint8Array(byteLength);
  copy.set(bytes.subarray(dataStart, dataStart + byteLength));
  return { dtype, shape, data: new ctor(copy.buffer, 0, count) };
}

export function readNpy(file: string): NpyArray {
  return parseNpy(readFileOrThrow(file), file);
}

/** Reads every array of a .npz (zip of .npy; stored or deflated). */
export function readNpz(file: string): Record<string, NpyArray> {
  const zip = readFileOrThrow(file);
  const out: Record<string, NpyArray> = {};
  for (const entry of listZip(zip, file)) {
    if (!entry.name.endsWith('.npy')) continue;
    const name = entry.name.slice(0, -4);
    out[name] = parseNpy(entry.read(), `${file}:${name}`);
  }
  return out;
}

interface ZipEntry { name: string; read(): Uint8Array }

function listZip(zip: Uint8Array, file: string): ZipEntry[] {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  // End of central directory: scan backwards for its signature.
  let eocd = -1;
  for (let i = zip.byteLength - 22; i >= Math.max(0, zip.byteLength - 65557); i--) {
    if (view.getUint32(i, true) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new OtfuseError('BAD_DATA', 'not a .npz (zip) file or truncated', { file });
  let count = view.getUint16(eocd + 10, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  // zip64: numpy writes it for large arrays.
  if (cdOffset === 0xffffffff || count === 0xffff) {
    const loc = eocd - 20;
    if (loc >= 0 && view.getUint32(loc, true) === 0x07064b50) {
      const z64 = Number(view.getBigUint64(loc + 8, true));
      count = Number(view.getBigUint64(z64 + 32, true));
      cdOffset = Number(view.getBigUint64(z64 + 48, true));
    }
  }
  const entries: ZipEntry[] = [];
  let p = cdOffset;
  for (let k = 0; k < count; k++) {
    if (view.getUint32(p, true) !== 0x02014b50) throw new OtfuseError('BAD_DATA', 'corrupt zip central directory', { file });
    const method = view.getUint16(p + 10, true);
    let compSize = view.getUint32(p + 20, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    let localOffset = view.getUint32(p + 42, true);
    const name = Buffer.from(zip.subarray(p + 46, p + 46 + nameLen)).toString('utf8');
    // zip64 extra field carries the real sizes/offset.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    let uncompSize = view.getUint32(p + 24, true);
    while (e + 4 <= extraEnd) {
      const id = view.getUint16(e, true);
      const size = view.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        if (uncompSize === 0xffffffff) { uncompSize = Number(view.getBigUint64(q, true)); q += 8; }
        if (compSize === 0xffffffff) { compSize = Number(view.getBigUint64(q, true)); q += 8; }
        if (localOffset === 0xffffffff) { localOffset = Number(view.getBigUint64(q, true)); q += 8; }
      }
      e += 4 + size;
    }
    p = extraEnd + commentLen;
    const lo = localOffset;
    entries.push({
      name,
      read: () => {
        const lNameLen = view.getUint16(lo + 26, true);
        const lExtraLen = view.getUint16(lo + 28, true);
        const start = lo + 30 + lNameLen + lExtraLen;
        if (start + compSize > zip.byteLength) throw new OtfuseError('BAD_DATA', `truncated zip entry '${name}'`, { file });
        const raw = zip.subarray(start, start + compSize);
        if (method === 0) return raw;
        if (method === 8) return new Uint8Array(zlib.inflateRawSync(raw));
        throw new OtfuseError('BAD_DATA', `zip entry '${name}' uses unsupported compression ${method}`, { file });
      },
    });
  }
  return entries;
}

function readFileOrThrow(file: string): Uint8Array {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new OtfuseError('BAD_DATA', `cannot read: ${(err as Error).message}`, { file });
  }
}

const DESCR: Partial<Record<string, string>> = { Float32Array: '<f4', Float64Array: '<f8', BigInt64Array: '<i8', Int32Array: '<i4', Uint8Array: '|u1', Int8Array: '|i1', Uint16Array: '<u2', Int16Array: '<i2' };

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
