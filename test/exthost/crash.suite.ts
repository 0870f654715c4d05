import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { api, example, waitFor } from './helpers';

suite('otfuse extension: worker crash', () => {
  test('killing the worker mid-run gives an error, and the next command works', async () => {
    const otfuse = await api();
    const model = vscode.Uri.file(example('vit48_s10.onnx'));
    const data = example('data/fmnist-test-2k.json');
    // Make sure a worker is up, then note its pid.
    await otfuse.engines.engine.ping();
    const pid = otfuse.engines.pid!;
    assert.ok(pid > 0);
    const crashesBefore = otfuse.engines.crashCount;
    const crashed = waitFor(otfuse.engines.onCrash, () => true, 60_000, 'the crash event');
    // Kill it as soon as the evaluation reports its first progress (i.e. mid-run).
    const running = waitFor(otfuse.jobs.onLive, (l) => !!l && l.state === 'running' && l.stage === 'evaluate', 60_000, 'evaluation progress');
    const job = vscode.commands.executeCommand('otfuse.evaluateModel', model, undefined, { data, quiet: true });
    await running;
    process.kill(pid, 'SIGKILL');
    await assert.rejects(Promise.resolve(job), (err: any) => {
      assert.equal(err.code, 'WORKER_CRASHED');
      assert.match(err.message, /worker process stopped/);
      return true;
    });
    const reason = await crashed;
    assert.match(reason, /SIGKILL/);
    assert.equal(otfuse.engines.crashCount, crashesBefore + 1);
    assert.equal(otfuse.jobs.lastLive?.state, 'failed', 'the Alignment view shows the failure');
    assert.match(otfuse.jobs.lastLive?.error ?? '', /worker process stopped/);

    // The next command starts a fresh worker and works.
    const result = await vscode.commands.executeCommand<any>('otfuse.evaluateModel', model, undefined, { data, quiet: true });
    assert.equal(result.samples, 2000);
    assert.ok(result.accuracy > 0.5);
    assert.notEqual(otfuse.engines.pid, pid, 'a new worker process');
  });

  test('crash through the test hook (worker exits by itself) is survived too', async () => {
    const otfuse = await api();
    const before = otfuse.engines.crashCount;
    await otfuse.engines.engine.crashForTest();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(otfuse.engines.crashCount, before + 1);
    const pong = await otfuse.engines.engine.ping();
    assert.ok(pong.pid > 0);
  });
});
