// A full temp folder while otfuse spools intermediate values (maps, Grams, aligned weights, capture streams): a
// clear IO error naming the temp file and what to do, never an INTERNAL one, and the capture stops cleanly.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Spool } from '../../worker/onnx/spool';
import { OtfuseError, toErrorInfo } from '../../worker/errors';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { analyzeModel } from '../../worker/graph/analyze';
import { StagedActivations, captureGroups } from '../../worker/fusion/activations';
import { VIT } from '../helpers';

/** fs.writeSync fails with ENOSPC once `room` bytes have been written through it. */
function diskFullAfter(room: number): () => void {
  const real = fs.writeSync;
  let written = 0;
  (fs as { writeSync: unknown }).writeSync = (fd: number, buf: Uint8Array, off?: number, len?: number, pos?: number) => {
    const n = len ?? buf.length;
    if (written + n > room) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    written += n;
    return real(fd, buf, off, len, pos);
  };
  return () => {
    (fs as { writeSync: unknown }).writeSync = real;
  };
}

test('spool: a full temp folder is an IO error naming the temp file, the sizes and TMPDIR', () => {
  const spool = new Spool('otfuse-test.spool');
  const restore = diskFullAfter(1024);
  try {
    assert.equal(spool.append(new Uint8Array(1000)), 0);
    assert.throws(
      () => spool.append(new Uint8Array(2 * 2 ** 20)),
      (e: unknown) =>
        e instanceof OtfuseError &&
        e.code === 'IO' &&
        /cannot write the temp file .*otfuse-test\.spool.*2\.0 MiB more after 0\.0 MiB\): no space left on the device \(ENOSPC\); free space in .* or set TMPDIR/.test(
          e.message,
        ) &&
        path.basename(e.file ?? '').includes('otfuse-test.spool'),
    );
  } finally {
    restore();
    spool.release();
  }
});

test('staged capture with its streams spooled: a full temp folder stops it with the IO error, nothing left open', async () => {
  const model = loadModel(path.join(VIT, 'vit48_s10.onnx'));
  const plan = analyzeModel(model);
  const ds = openDataset(path.join(VIT, 'calib200.npz'));
  const staged = new StagedActivations(model, plan, ds, {
    samples: 40,
    batchSize: 16,
    tokenFilter: 'all',
    standardize: true,
    hasCls: true,
    streamMemoryBytes: 0,
  });
  const spools = () =>
    fs
      .readdirSync('/proc/self/fd')
      .map((fd) => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          return '';
        }
      })
      .filter((target) => target.includes('otfuse-streams.spool'));
  const restore = diskFullAfter(0);
  let err: unknown;
  try {
    await staged.prepare(captureGroups(plan).length - 1);
  } catch (e) {
    err = e;
  } finally {
    restore();
  }
  assert.ok(err, 'the capture failed');
  assert.deepEqual(spools(), [], 'the failed stage closed its spool');
  const info = toErrorInfo(err);
  assert.equal(info.code, 'IO');
  assert.match(info.message, /otfuse-streams\.spool.*no space left on the device/);
  staged.release();
  assert.deepEqual(spools(), [], 'no spool file left open');
});
