// Per-job malloc settings (runtime/malloc.ts): finetuning runs in a process started with a fixed mmap threshold,
// everything else with glibc's defaults; the CLI runs a finetune in a child process (Ctrl-C still cancels it
// cleanly), the extension's client restarts an idle worker whose settings differ.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { EngineClient } from '../../worker/client';
import { mallocTunables } from '../../worker/runtime/malloc';
import { OtfuseError } from '../../worker/errors';
import { CLI, ROOT, VIT, tempDir } from '../helpers';

const FINETUNE_TUNABLES = 'glibc.malloc.mmap_threshold=4194304';

test('malloc settings: finetuning gets a fixed mmap threshold on Linux, other jobs the defaults, a user setting wins', () => {
  assert.equal(mallocTunables('finetune', {}, 'linux'), FINETUNE_TUNABLES);
  assert.equal(mallocTunables('finetuneRun', {}, 'linux'), FINETUNE_TUNABLES);
  for (const m of ['fuse', 'evaluate', 'inspect', 'providers'] as const) assert.equal(mallocTunables(m, {}, 'linux'), '', m);
  assert.equal(mallocTunables('finetune', {}, 'darwin'), '');
  assert.equal(mallocTunables('finetune', { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }, 'linux'), 'glibc.malloc.arena_max=2');
  assert.equal(mallocTunables('fuse', { GLIBC_TUNABLES: '' }, 'linux'), '');
});

/** Processes whose parent is `pid` (from /proc/N/stat: "pid (comm) state ppid …"). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch {
      /* ended meanwhile */
    }
  }
  return out;
}

function environOf(pid: number): string[] {
  return fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
}

test(
  'engine client: a finetune call runs in a worker started with the finetune settings; the next call of another kind in one with the defaults',
  { skip: process.platform !== 'linux' && 'reads /proc' },
  async () => {
    const saved = process.env.GLIBC_TUNABLES;
    delete process.env.GLIBC_TUNABLES;
    const client = new EngineClient({ hostScript: path.join(ROOT, 'dist', 'host.js') });
    try {
      await client.inspect({ model: path.join(VIT, 'vit48_s10.onnx') });
      const first = client.pid!;
      assert.ok(!environOf(first).some((e) => e.startsWith('GLIBC_TUNABLES=')), 'inspect: glibc defaults');
      // A finetune that fails at once (no such model) still ran in a worker with the finetune settings.
      await assert.rejects(
        client.finetune({
          model: path.join(VIT, 'missing.onnx'),
          data: { path: path.join(VIT, 'calib200.npz') },
          output: path.join(tempDir(), 'x.onnx'),
          maxSteps: 1,
        }),
        (e: unknown) => e instanceof OtfuseError && /missing\.onnx/.test(e.message),
      );
      const second = client.pid!;
      assert.notEqual(second, first, 'the idle worker was replaced');
      assert.ok(environOf(second).includes(`GLIBC_TUNABLES=${FINETUNE_TUNABLES}`));
      await client.inspect({ model: path.join(VIT, 'vit48_s10.onnx') });
      const third = client.pid!;
      assert.notEqual(third, second);
      assert.ok(!environOf(third).some((e) => e.startsWith('GLIBC_TUNABLES=')));
      // Same kind again: the same worker.
      await client.inspect({ model: path.join(VIT, 'vit48_s11.onnx') });
      assert.equal(client.pid, third);
      // Calls of both kinds at once: the worker chosen for one is never replaced under it (no crash, both answered).
      const calib = { path: path.join(VIT, 'calib200.npz') };
      const [inspected, failed] = await Promise.allSettled([
        client.inspect({ model: path.join(VIT, 'vit48_s10.onnx') }),
        client.finetune({ model: path.join(VIT, 'missing.onnx'), data: calib, output: path.join(tempDir(), 'y.onnx'), maxSteps: 1 }),
      ]);
      assert.equal(inspected.status, 'fulfilled');
      assert.ok(failed.status === 'rejected' && /missing\.onnx/.test(String(failed.reason)), String((failed as PromiseRejectedResult).reason));
      // Cancelled while the idle worker is being replaced: the call ends as cancelled, nothing runs on.
      await client.inspect({ model: path.join(VIT, 'vit48_s10.onnx') });
      const controller = new AbortController();
      const cancelled = client.finetune(
        { model: path.join(VIT, 'vit48_s10.onnx'), data: calib, output: path.join(tempDir(), 'z.onnx'), epochs: 1000 },
        { signal: controller.signal },
      );
      controller.abort();
      await assert.rejects(cancelled, (e: unknown) => e instanceof OtfuseError && e.code === 'CANCELLED');
    } finally {
      client.dispose();
      if (saved !== undefined) process.env.GLIBC_TUNABLES = saved;
    }
  },
);

test(
  'CLI: finetune runs in a child with the finetune settings; Ctrl-C sent to the otfuse process cancels the job cleanly',
  { skip: process.platform !== 'linux' && 'glibc settings' },
  async () => {
    const dir = tempDir();
    const output = path.join(dir, 'ft.onnx');
    const env = { ...process.env };
    delete env.GLIBC_TUNABLES;
    const cli = spawn(
      process.execPath,
      [
        CLI,
        'finetune',
        path.join(VIT, 'vit48_s10.onnx'),
        '--data',
        path.join(VIT, 'calib200.npz'),
        '-o',
        output,
        '--epochs',
        '1000',
        '--batch-size',
        '8',
        '--provider',
        'cpu',
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    cli.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => cli.on('exit', (code) => resolve(code)));
    // The job's process: a child of the CLI, started with the finetune settings.
    let childPid: number | undefined;
    for (let i = 0; i < 100 && !childPid; i++) {
      await new Promise((r) => setTimeout(r, 100));
      childPid = childrenOf(cli.pid!).find((pid) => environOf(pid).includes(`GLIBC_TUNABLES=${FINETUNE_TUNABLES}`));
    }
    assert.ok(childPid, `a child process with the finetune settings (children: ${childrenOf(cli.pid!).join(', ')})`);
    // Into the training loop (the job's own Ctrl-C handler is set up at once; this leaves it time to load).
    await new Promise((r) => setTimeout(r, 4000));
    cli.kill('SIGINT');
    const code = await exited;
    assert.equal(code, 1, stderr);
    assert.match(stderr, /cancelling/);
    assert.match(stderr, /cancelled/);
    // At most the last epoch's checkpoint (written whole, by rename), never a temp file.
    assert.ok(
      fs.readdirSync(dir).every((f) => f === 'ft.onnx'),
      fs.readdirSync(dir).join(', '),
    );
    assert.ok(!fs.existsSync(`/proc/${childPid}`) || fs.readFileSync(`/proc/${childPid}/stat`, 'utf8').includes(') Z'), 'the job process ended');
  },
);
