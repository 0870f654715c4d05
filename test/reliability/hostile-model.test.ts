// Issue 15.1: external data that is a symlink out of the model's folder, a device or a FIFO; tensors declaring
// huge dims without data. Each must fail fast as BAD_MODEL naming the file, never read, hang or allocate.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { loadModel } from '../../worker/onnx/model';
import { OtfuseError } from '../../worker/errors';
import { VIT, tempDir } from '../helpers';
import { hasStackTrace, modelWithExternal, runCliWatched } from './helpers';

test('a symlink inside the model folder that points outside it is refused (no secret leaks into the model)', () => {
  const dir = tempDir();
  const outside = tempDir();
  const { bytes } = modelWithExternal(dir, 'w.bin');
  // A "secret" outside the folder, exactly as long as the tensor so a plain read would succeed.
  fs.writeFileSync(path.join(outside, 'secret'), Buffer.alloc(bytes, 0x41));
  fs.symlinkSync(path.join(outside, 'secret'), path.join(dir, 'w.bin'));
  assert.throws(
    () => loadModel(path.join(dir, 'ext.onnx')),
    (err: OtfuseError) => err.code === 'BAD_MODEL' && /symbolic link that escapes/.test(err.message) && err.message.includes('ext.onnx'),
  );
  // A symlink to a folder outside, reached through a relative path, is refused the same way.
  fs.rmSync(path.join(dir, 'w.bin'));
  fs.symlinkSync(outside, path.join(dir, 'sub'));
  const viaDir = modelWithExternal(dir, 'sub/secret', 'viadir.onnx');
  assert.throws(() => loadModel(viaDir.file), /escapes the model's folder/);
  // A symlink that stays inside the folder is fine.
  const inside = modelWithExternal(dir, 'link.bin', 'inside.onnx');
  fs.writeFileSync(path.join(dir, 'real.bin'), Buffer.alloc(inside.bytes));
  fs.symlinkSync('real.bin', path.join(dir, 'link.bin'));
  assert.equal(loadModel(inside.file).getInitializer(inside.tensor).data.length, inside.bytes / 4);
});

test('external data that is /dev/zero (via a link inside the folder) or a FIFO is refused at once', () => {
  const dir = tempDir();
  // /dev/zero copied as a device node is not possible without root; a hard path check covers the link case
  // and the FIFO covers the "not a regular file" case without relying on containment.
  modelWithExternal(dir, 'zero.bin', 'zero.onnx');
  fs.symlinkSync('/dev/zero', path.join(dir, 'zero.bin'));
  assert.throws(
    () => loadModel(path.join(dir, 'zero.onnx')),
    (err: OtfuseError) => err.code === 'BAD_MODEL',
  );
  const fifo = modelWithExternal(dir, 'pipe.bin', 'fifo.onnx');
  execFileSync('mkfifo', [path.join(dir, 'pipe.bin')]);
  const t0 = Date.now();
  assert.throws(
    () => loadModel(fifo.file),
    (err: OtfuseError) => err.code === 'BAD_MODEL' && /FIFO/.test(err.message),
  );
  assert.ok(Date.now() - t0 < 5000);
  // Through the CLI: exits 1 with a message naming the model, no hang, no stack trace.
  const r = runCliWatched(['inspect', fifo.file, '--provider', 'cpu'], { timeoutMs: 30_000 });
  assert.equal(r.timedOut, false, 'inspect on a FIFO must not hang');
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /fifo\.onnx.*FIFO/);
  assert.equal(hasStackTrace(r.stderr), false);
});

test('a model file that is itself a FIFO or a device is refused without reading it', () => {
  const dir = tempDir();
  execFileSync('mkfifo', [path.join(dir, 'model.onnx')]);
  assert.throws(
    () => loadModel(path.join(dir, 'model.onnx')),
    (err: OtfuseError) => err.code === 'BAD_MODEL' && /FIFO/.test(err.message),
  );
  fs.symlinkSync('/dev/zero', path.join(dir, 'zero.onnx'));
  assert.throws(
    () => loadModel(path.join(dir, 'zero.onnx')),
    (err: OtfuseError) => err.code === 'BAD_MODEL' && /device/.test(err.message),
  );
});

test('external data length must match the declared dims; offset + length must fit the file', () => {
  const dir = tempDir();
  const m = modelWithExternal(dir, 'w.bin');
  fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.alloc(m.bytes - 4));
  assert.throws(() => loadModel(m.file), /do not fit the file|truncated/);
  const proto = onnx.ModelProto.decode(fs.readFileSync(m.file));
  const t = proto.graph!.initializer!.find((x) => x.name === m.tensor)!;
  t.externalData = [
    { key: 'location', value: 'w.bin' },
    { key: 'length', value: String(8 * 2 ** 30) },
  ];
  fs.writeFileSync(m.file, onnx.ModelProto.encode(proto).finish());
  assert.throws(() => loadModel(m.file), /does not match its dims/);
});

test('a tensor declaring [30000, 30000] with no data fails at load without allocating 3.6 GB', () => {
  const dir = tempDir();
  const proto = onnx.ModelProto.decode(fs.readFileSync(path.join(VIT, 'vit48_s10.onnx')));
  const t = proto.graph!.initializer!.find((x) => (x.dims ?? []).length === 2)!;
  t.dims = [30000, 30000];
  t.rawData = new Uint8Array(0);
  const file = path.join(dir, 'huge.onnx');
  fs.writeFileSync(file, onnx.ModelProto.encode(proto).finish());
  const before = process.memoryUsage().rss;
  assert.throws(
    () => loadModel(file),
    (err: OtfuseError) => err.code === 'BAD_MODEL' && /declares dims \[30000,30000\]/.test(err.message),
  );
  assert.ok(process.memoryUsage().rss - before < 512 * 2 ** 20);
  const r = runCliWatched(['inspect', file, '--provider', 'cpu']);
  assert.equal(r.code, 1, r.stderr);
  assert.ok(r.peakRssMiB < 400, `peak RSS ${r.peakRssMiB} MiB`);
});
