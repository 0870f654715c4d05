// Entry point of the worker process: runs the engine and exposes it over comlink on the IPC channel.
import * as Comlink from 'comlink';
import { engine, EngineApi } from './api';
import { OtfuseError, toErrorInfo } from './errors';
import { BeatEnvelope, EngineMethod, HEARTBEAT_ENV, HostApi, Outcome, ProgressEnvelope, TestHook, processEndpoint } from './ipc';

if (!process.send) {
  console.error('otfuse worker host must be started with an IPC channel (child_process.fork)');
  process.exit(2);
}

const jobs = new Map<string, AbortController>();
const leaked: Uint8Array[] = [];

// Heartbeat from the event loop: the parent's watchdog kills and restarts a worker whose beats stop.
const beatMs = Math.max(50, Number(process.env[HEARTBEAT_ENV]) || 1000);
const beat = () => process.send?.({ ch: 'beat', rss: process.memoryUsage().rss } satisfies BeatEnvelope);
setInterval(beat, beatMs);
beat();

const host: HostApi = {
  async call(jobId: string, method: EngineMethod, request: unknown): Promise<Outcome<unknown>> {
    const controller = new AbortController();
    jobs.set(jobId, controller);
    const context = {
      signal: controller.signal,
      onProgress: (event: ProgressEnvelope['event']) => process.send?.({ ch: 'progress', jobId, event } satisfies ProgressEnvelope),
    };
    try {
      const fn = engine[method] as (req: unknown, ctx: typeof context) => Promise<unknown>;
      if (typeof fn !== 'function') throw new Error(`unknown engine method '${method}'`);
      return { ok: true, value: await fn.call(engine as EngineApi, request, context) };
    } catch (err) {
      return { ok: false, error: toErrorInfo(err) };
    } finally {
      jobs.delete(jobId);
    }
  },
  cancel(jobId: string) {
    jobs.get(jobId)?.abort();
  },
  async ping() {
    return { pid: process.pid, memory: process.memoryUsage().rss };
  },
  async hookForTest(_jobId: string, hook: TestHook): Promise<Outcome<unknown>> {
    if (process.env.OTFUSE_TEST_HOOKS !== '1') return { ok: false, error: { code: 'BAD_USAGE', message: 'test hooks are disabled' } };
    if (hook.kind === 'block') {
      const until = Date.now() + hook.ms;
      while (Date.now() < until) {
        /* synchronous work: no beats, no answers */
      }
      return { ok: true, value: null };
    }
    // Memory that a failed call leaves behind (touched, so it is resident).
    for (let i = 0; i < hook.mb; i++) leaked.push(new Uint8Array(2 ** 20).fill(1));
    return { ok: false, error: toErrorInfo(new OtfuseError('BAD_DATA', `test hook: failed after allocating ${hook.mb} MiB`)) };
  },
  crashForTest() {
    if (process.env.OTFUSE_TEST_HOOKS !== '1') return;
    // A hard exit, as an out-of-memory kill or a native crash in ONNX Runtime would look to the parent.
    setImmediate(() => process.kill(process.pid, 'SIGKILL'));
  },
};

Comlink.expose(host, processEndpoint(process));
// Exit with the parent: an orphaned worker would keep a GPU/CPU busy.
process.on('disconnect', () => process.exit(0));
