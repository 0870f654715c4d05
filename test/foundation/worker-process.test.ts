// The worker-process boundary: typed calls, progress, cancellation, and surviving a crash of the worker.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { EngineClient } from '../../worker/client';
import { OtfuseError } from '../../worker/errors';
import type { ProgressEvent } from '../../worker/types';
import { EXAMPLES, ROOT, VIT } from '../helpers';

const hostScript = path.join(ROOT, 'dist', 'host.js');
const model = path.join(EXAMPLES, 'vit48_s10.onnx');
const data = path.join(EXAMPLES, 'data', 'fmnist-test-2k.json');

test('calls run in a separate process, stream progress and keep error codes', async () => {
  const crashes: string[] = [];
  const client = new EngineClient({ hostScript, onCrash: (r) => crashes.push(r) });
  try {
    const info = await client.ping();
    assert.notEqual(info.pid, process.pid);
    const events: ProgressEvent[] = [];
    const result = await client.evaluate({ model, data, batchSize: 250 }, { onProgress: (e) => events.push(e) });
    assert.equal(result.samples, 2000);
    assert.ok(Math.abs(result.accuracy - 0.8545) < 1e-9, String(result.accuracy));
    const last = events[events.length - 1];
    assert.equal(last.done, 2000);
    assert.ok(events.filter((e) => e.stage === 'evaluate').length >= 8, `${events.length} events`);
    await assert.rejects(
      client.inspect({ model: path.join(VIT, 'nope.onnx') }),
      (err: OtfuseError) => err.code === 'BAD_MODEL' && /nope\.onnx/.test(err.message),
    );
    assert.deepEqual(crashes, []);
  } finally {
    client.dispose();
  }
});

test('cancellation through an AbortSignal stops the job with CANCELLED', async () => {
  const client = new EngineClient({ hostScript });
  try {
    const controller = new AbortController();
    const pending = client.evaluate(
      { model, data, batchSize: 1 },
      {
        signal: controller.signal,
        onProgress: (e) => {
          if ((e.done ?? 0) >= 20) controller.abort();
        },
      },
    );
    await assert.rejects(pending, (err: OtfuseError) => err.code === 'CANCELLED');
    // The worker is still alive and usable.
    const again = await client.evaluate({ model, data, limit: 100 });
    assert.equal(again.samples, 100);
  } finally {
    client.dispose();
  }
});

test('a crash of the worker surfaces as WORKER_CRASHED and the next call restarts it', async () => {
  const crashes: string[] = [];
  const client = new EngineClient({ hostScript, env: { OTFUSE_TEST_HOOKS: '1' }, onCrash: (r) => crashes.push(r) });
  try {
    const first = await client.ping();
    // A long call in flight when the worker dies must be rejected, not left hanging.
    const inFlight = client.evaluate({ model, data, batchSize: 1 });
    const crash = client.crashForTest();
    await assert.rejects(inFlight, (err: OtfuseError) => err.code === 'WORKER_CRASHED' && /SIGKILL/.test(err.message));
    await crash;
    assert.equal(crashes.length, 1);
    const second = await client.ping();
    assert.notEqual(second.pid, first.pid);
    const result = await client.evaluate({ model, data, limit: 200 });
    assert.equal(result.samples, 200);
  } finally {
    client.dispose();
  }
});
