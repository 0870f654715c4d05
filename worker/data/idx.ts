// IDX files (the MNIST family), raw or gzip-compressed.
import fs from 'node:fs';
import zlib from 'node:zlib';
import { OtfuseError } from '../errors';

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

export function readIdx(file: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = zlib.gunzipSync(bytes);
  } catch (err) {
    throw new OtfuseError('BAD_DATA', `cannot read IDX file: ${(err as Error).message}`, { file });
  }
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0) throw new OtfuseError('BAD_DATA', 'not an IDX file (bad magic)', { file });
  if (bytes[2] !== 0x08) throw new OtfuseError('BAD_DATA', `IDX element type 0x${bytes[2].toString(16)} is not supported (only unsigned bytes)`, { file });
  const rank = bytes[3];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) shape.push(view.getUint32(4 + 4 * i, false));
  const start = 4 + 4 * rank;
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.length - start < count) throw new OtfuseError('BAD_DATA', `truncated IDX file: ${bytes.length - start} bytes for shape [${shape}]`, { file });
  return { shape, data: bytes.subarray(start, start + count) };
}
