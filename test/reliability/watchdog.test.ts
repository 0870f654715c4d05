// Issue 15.3: a worker blocked in synchronous work is killed by the heartbeat watchdog and the caller told why;
// Cancel ends a call even when the worker cannot see the cancel; a failed call that left the worker holding much
// memory recycles it.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { EngineClient } from '../../worker/client';
import { OtfuseError } from '../../worker/errors';
import { ROOT } from '../helpers';

const hostScript = path.join(ROOT, 'dist', 'host.js');
const env = { OTFUSE_TEST_HOOKS: '1' };

test('a worker that stops beating is killed; the call fails with the reason; the next call gets a new worker', async () => {
  const crashes: string[] = [];
  const client = new EngineClient({ hostScript, env, heartbeatMs: 100, deadlineMs: 1000, onCrash: (r) => crashes.push(r) });
  try {
    const first = await client.ping();
    const t0 = Date.now();
    await assert.rejects(
      client.hookForTest({ kind: 'block', ms: 30_000 }),
      (e: OtfuseError) => e.code === 'WORKER_CRASHED' && /stopped answering for \d/.test(e.message),
    );
    assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
    assert.equal(crashes.length, 1);
    const second = await client.ping();
    assert.notEqual(second.pid, first.pid);
  } finally {
    client.dispose();
  }
});

test('a short synchronous step under the deadline is not killed', async () => {
  const client = new EngineClient({ hostScript, env, heartbeatMs: 100, deadlineMs: 3000 });
  try {
    const first = await client.ping();
    await client.hookForTest({ kind: 'block', ms: 1000 });
    assert.equal((await client.ping()).pid, first.pid);
  } finally {
    client.dispose();
  }
});

test('Cancel ends a call whose worker is blocked (restarting it), with CANCELLED', async () => {
  const client = new EngineClient({ hostScript, env, heartbeatMs: 200, deadlineMs: 60_000, cancelGraceMs: 500 });
  try {
    const first = await client.ping();
    const controller = new AbortController();
    const pending = client.hookForTest({ kind: 'block', ms: 30_000 }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 300);
    const t0 = Date.now();
    await assert.rejects(pending, (e: OtfuseError) => e.code === 'CANCELLED' && /restarted/.test(e.message));
    assert.ok(Date.now() - t0 < 10_000);
    assert.notEqual((await client.ping()).pid, first.pid);
  } finally {
    client.dispose();
  }
});

test('a failed call that leaves the worker above the memory limit recycles it; a small one does not', async () => {
  const recycled: string[] = [];
  const client = new EngineClient({ hostScript, env, recycleAboveBytes: 400 * 2 ** 20, onRecycle: (r) => recycled.push(r) });
  try {
    const first = await client.ping();
    await assert.rejects(client.hookForTest({ kind: 'leak', mb: 8 }), (e: OtfuseError) => e.code === 'BAD_DATA');
    assert.equal((await client.ping()).pid, first.pid, 'small failure keeps the worker');
    await assert.rejects(client.hookForTest({ kind: 'leak', mb: 600 }), (e: OtfuseError) => e.code === 'BAD_DATA');
    assert.match(recycled.join('\n'), /recycled after a failed call left it holding \d+ MiB/);
    const after = await client.ping();
    assert.notEqual(after.pid, first.pid);
    assert.ok(after.memory < 400 * 2 ** 20);
  } finally {
    client.dispose();
  }
});
