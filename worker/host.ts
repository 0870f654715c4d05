// Entry point of the worker process: runs the engine and exposes it over comlink on the IPC channel.
import * as Comlink from 'comlink';
import { engine, EngineApi } from './api';
import { toErrorInfo } from './errors';
import { EngineMethod, HostApi, Outcome, ProgressEnvelope, processEndpoint } from './ipc';

if (!process.send) {
  console.error('otfuse worker host must be started with an IPC channel (child_process.fork)');
  process.exit(2);
}

const jobs = new Map<string, AbortController>();

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
  crashForTest() {
    if (process.env.OTFUSE_TEST_HOOKS !== '1') return;
    // A hard exit, as an out-of-memory kill or a native crash in ONNX Runtime would look to the parent.
    setImmediate(() => process.kill(process.pid, 'SIGKILL'));
  },
};

Comlink.expose(host, processEndpoint(process));
// Exit with the parent: an orphaned worker would keep a GPU/CPU busy.
process.on('disconnect', () => process.exit(0));
