// safetensors: 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}} (plus an
// optional "__metadata__" of strings), then the raw little-endian tensor bytes. Only F32 is written here; F16/F32/F64
// and I32 (a maps file's top-3 columns) are read, as float32. Python users can load the maps with `safetensors.numpy.load_file`.
import { OtfuseError } from '../errors';
import { halfToFloat } from '../onnx/model';

export interface StTensor {
  shape: number[];
  data: Float32Array;
}

export function encodeSafetensors(tensors: Record<string, StTensor>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const names = Object.keys(tensors);
  for (const name of names) {
    const t = tensors[name];
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new OtfuseError('INTERNAL', `safetensors: '${name}' has ${t.data.length} values for shape [${t.shape}]`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (allowed by the format, helps mmap readers).
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const hbytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + hbytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hbytes.length), true);
  out.set(hbytes, 8);
  let p = 8 + hbytes.length;
  for (const name of names) {
    const d = tensors[name].data;
    const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    if (isLittleEndian()) out.set(bytes, p);
    else {
      const v = new DataView(out.buffer, p, d.byteLength);
      for (let i = 0; i < d.length; i++) v.setFloat32(i * 4, d[i], true);
    }
    p += d.byteLength;
  }
  return out;
}

export function decodeSafetensors(bytes: Uint8Array, file = ''): { tensors: Record<string, StTensor>; metadata?: Record<string, string> } {
  if (bytes.length < 8) throw new OtfuseError('BAD_DATA', 'safetensors file is shorter than its header length', { file });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (8 + n > bytes.length) throw new OtfuseError('BAD_DATA', 'safetensors header runs past the end of the file', { file });
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8'));
  } catch (err) {
    throw new OtfuseError('BAD_DATA', `safetensors header is not JSON: ${(err as Error).message}`, { file });
  }
  const base = 8 + n;
  const tensors: Record<string, StTensor> = {};
  let metadata: Record<string, string> | undefined;
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = info as Record<string, string>;
      continue;
    }
    const {
      dtype,
      shape,
      data_offsets: [s, e],
    } = info as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const count = shape.reduce((a, b) => a * b, 1);
    const width = dtype === 'F32' || dtype === 'I32' ? 4 : dtype === 'F64' ? 8 : dtype === 'F16' ? 2 : 0;
    if (!width) throw new OtfuseError('UNSUPPORTED', `safetensors: tensor '${name}' has dtype ${dtype} (only F16/F32/F64/I32 are read)`, { file });
    if (e - s !== count * width || base + e > bytes.length) throw new OtfuseError('BAD_DATA', `safetensors: tensor '${name}' has a bad data range`, { file });
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      data[i] =
        width === 4
          ? dtype === 'I32'
            ? view.getInt32(base + s + i * 4, true) // (a map's top-3 columns: exact below 2²⁴)
            : view.getFloat32(base + s + i * 4, true)
          : width === 8
            ? view.getFloat64(base + s + i * 8, true)
            : halfToFloat(view.getUint16(base + s + i * 2, true));
    }
    tensors[name] = { shape, data };
  }
  return { tensors, metadata };
}

function isLittleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}
