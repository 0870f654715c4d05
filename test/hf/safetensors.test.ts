// The safetensors reader is strict: a header that lies about sizes, offsets that overlap or leave gaps, unknown
// dtypes and trailing bytes are refused with the reason; F16/BF16 convert to float32 and back exactly.
import test from 'node:test';
import assert from 'node:assert/strict';
import { OtfuseError } from '../../worker/errors';
import { encodeSafetensorsRaw, fromFloat32, parseSafetensors, toFloat32 } from '../../worker/hf/safetensors';

function file(header: object, dataBytes: number): Uint8Array {
  const h = Buffer.from(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  return out;
}

function refused(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => parseSafetensors(bytes, 'x.safetensors'),
    (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_MODEL' && pattern.test(e.message) && e.message.includes('x.safetensors'),
  );
}

test('valid files parse; tensors come back in offset order', () => {
  const st = parseSafetensors(
    file(
      { b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] }, a: { dtype: 'F16', shape: [2, 2], data_offsets: [0, 8] }, __metadata__: { format: 'pt' } },
      16,
    ),
    'x',
  );
  assert.deepEqual(
    st.entries.map((e) => e.key),
    ['a', 'b'],
  );
  assert.deepEqual(st.metadata, { format: 'pt' });
});

test('lies in the header are refused', () => {
  refused(new Uint8Array(5), /shorter than the 8-byte header length/);
  refused(file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 4), /ends at byte 8 of a 4-byte buffer/);
  refused(file({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), /needs 12 bytes/);
  refused(file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), /overlaps/);
  refused(file({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /gap of 4 bytes/);
  refused(file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 8), /4 bytes after the last tensor/);
  refused(file({ a: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, 1), /unknown dtype "Q4"/);
  refused(file({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /bad shape/);
  refused(file({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, 4), /bad data_offsets/);
  refused(file({ __metadata__: { n: 1 } }, 0), /__metadata__ must map strings to strings/);
  const notJson = file({}, 0);
  notJson[8] = 0x7b + 1;
  refused(notJson, /not UTF-8 JSON/);
});

test('F16 and BF16 round-trip exactly through float32; integer weights are refused by name', () => {
  for (const dtype of ['F16', 'BF16'] as const) {
    const bits = new Uint16Array([0x0000, 0x8000, 0x3c00, 0xc000, 0x0001, 0x7bff, 0x3555, 0x4049]);
    const e = { key: 'w', dtype, shape: [bits.length], bytes: new Uint8Array(bits.buffer) };
    const back = fromFloat32(toFloat32(e, 'f'), dtype, 'w');
    assert.deepEqual(Array.from(new Uint16Array(back.buffer)), Array.from(bits), dtype);
  }
  assert.equal(toFloat32({ key: 'w', dtype: 'BF16', shape: [1], bytes: new Uint8Array(new Uint16Array([0x4049]).buffer) }, 'f')[0], 3.140625);
  assert.throws(() => toFloat32({ key: 'q', dtype: 'I8', shape: [1], bytes: new Uint8Array(1) }, 'f'), /tensor 'q' has dtype I8/);
  const enc = encodeSafetensorsRaw([{ key: 'w', dtype: 'F32', shape: [1], bytes: new Uint8Array(4) }], { format: 'pt' });
  assert.equal(enc.length - 8 - Number(new DataView(enc.buffer).getBigUint64(0, true)), 4);
  assert.equal((8 + Number(new DataView(enc.buffer).getBigUint64(0, true))) % 8, 0, 'data starts 8-aligned');
});
