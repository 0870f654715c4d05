// Starts the worker process lazily and offers the same EngineApi as the in-process engine. A crash of the worker
// rejects the calls in flight with WORKER_CRASHED; the next call starts a fresh worker. A watchdog listens to the
// worker's heartbeat: a worker that stops beating (blocked in synchronous work, hung) is killed and the caller
// told why; a cancelled call that does not stop within a grace period is ended the same way; and a worker left
// holding much memory after a failed call is recycled.
import { fork, ChildProcess } from 'node:child_process';
import path from 'node:path';
import * as Comlink from 'comlink';
import { OtfuseError, fromErrorInfo } from './errors';
import type { EngineApi } from './api';
import { Envelope, EngineMethod, HEARTBEAT_ENV, HostApi, Outcome, TestHook, processEndpoint } from './ipc';
import type { JobContext, ProgressEvent } from './types';
import { mallocTunables } from './runtime/malloc';

export interface EngineClientOptions {
  /** Path of the bundled worker entry (dist/host.js). */
  hostScript?: string;
  /** Node executable for the worker (default: this process's; Electron runs it as Node). */
  execPath?: string;
  env?: NodeJS.ProcessEnv;
  /** Called when the worker dies unexpectedly. */
  onCrash?: (reason: string) => void;
  /** Receives the worker's stderr/stdout lines (for an output channel). */
  onLog?: (line: string) => void;
  /** Heartbeat period of the worker (default 1 s). */
  heartbeatMs?: number;
  /** A worker silent for this long is killed and restarted (default 120 s: long enough for any synchronous step). */
  deadlineMs?: number;
  /** After a cancel, a call that has not ended within this time is ended by restarting the worker (default 10 s). */
  cancelGraceMs?: number;
  /** After a failed call, a worker above this resident memory is recycled (default 1.5 GiB). */
  recycleAboveBytes?: number;
  /** Told when the client restarts the worker on its own (watchdog, cancel, recycle). */
  onRecycle?: (reason: string) => void;
}

export const WATCHDOG_DEFAULTS = { heartbeatMs: 1000, deadlineMs: 120_000, cancelGraceMs: 10_000, recycleAboveBytes: 1.5 * 2 ** 30 };

interface Worker {
  child: ChildProcess;
  remote: Comlink.Remote<HostApi>;
  exited: Promise<string>;
  progress: Map<string, (event: ProgressEvent) => void>;
  lastBeat: number;
  rss: number;
  /** Why the client itself killed this worker (so calls in flight get that reason, not "killed by SIGKILL"). */
  killedBecause?: { code: 'WORKER_CRASHED' | 'CANCELLED'; message: string };
  /** The GLIBC_TUNABLES it was started with ('' = glibc's defaults; runtime/malloc.ts). */
  tunables: string;
  /** Calls in flight. */
  calls: number;
}

let jobCounter = 0;

export class EngineClient implements EngineApi {
  private worker?: Worker;
  private disposed = false;

  constructor(private readonly options: EngineClientOptions = {}) {}

  get pid(): number | undefined {
    return this.worker?.child.pid;
  }

  get running(): boolean {
    return this.worker !== undefined;
  }

  private get settings() {
    return { ...WATCHDOG_DEFAULTS, ...Object.fromEntries(Object.entries(this.options).filter(([, v]) => v !== undefined)) } as typeof WATCHDOG_DEFAULTS;
  }

  /** Resident memory of the worker at its last heartbeat (bytes), if running. */
  get workerRss(): number | undefined {
    return this.worker?.rss;
  }

  providers(choice?: Parameters<EngineApi['providers']>[0]) {
    return this.invoke('providers', choice) as ReturnType<EngineApi['providers']>;
  }
  inspect(request: Parameters<EngineApi['inspect']>[0]) {
    return this.invoke('inspect', request) as ReturnType<EngineApi['inspect']>;
  }
  check(request: Parameters<EngineApi['check']>[0]) {
    return this.invoke('check', request) as ReturnType<EngineApi['check']>;
  }
  evaluate(request: Parameters<EngineApi['evaluate']>[0], context?: JobContext) {
    return this.invoke('evaluate', request, context) as ReturnType<EngineApi['evaluate']>;
  }
  fuse(request: Parameters<EngineApi['fuse']>[0], context?: JobContext) {
    return this.invoke('fuse', request, context) as ReturnType<EngineApi['fuse']>;
  }
  finetune(request: Parameters<EngineApi['finetune']>[0], context?: JobContext) {
    return this.invoke('finetune', request, context) as ReturnType<EngineApi['finetune']>;
  }
  importHf(request: Parameters<EngineApi['importHf']>[0]) {
    return this.invoke('importHf', request) as ReturnType<EngineApi['importHf']>;
  }
  exportHf(request: Parameters<EngineApi['exportHf']>[0]) {
    return this.invoke('exportHf', request) as ReturnType<EngineApi['exportHf']>;
  }
  finetuneRun(request: Parameters<EngineApi['finetuneRun']>[0], context?: JobContext) {
    return this.invoke('finetuneRun', request, context) as ReturnType<EngineApi['finetuneRun']>;
  }
  describeData(files: string[]) {
    return this.invoke('describeData', files) as ReturnType<EngineApi['describeData']>;
  }
  reevaluateRun(request: Parameters<EngineApi['reevaluateRun']>[0], context?: JobContext) {
    return this.invoke('reevaluateRun', request, context) as ReturnType<EngineApi['reevaluateRun']>;
  }
  merge(request: Parameters<EngineApi['merge']>[0], context?: JobContext) {
    return this.invoke('merge', request, context) as ReturnType<EngineApi['merge']>;
  }
  mergeMethods() {
    return this.invoke('mergeMethods', undefined) as ReturnType<EngineApi['mergeMethods']>;
  }
  sharedBase(request: Parameters<EngineApi['sharedBase']>[0]) {
    return this.invoke('sharedBase', request) as ReturnType<EngineApi['sharedBase']>;
  }

  /** The worker's pid and memory; answered by the worker a next plain call would use (not a finetune's). */
  async ping(): Promise<{ pid: number; memory: number }> {
    const worker = await this.workerFor('providers');
    return Promise.race([
      worker.remote.ping(),
      worker.exited.then((reason) => {
        throw worker.killedBecause ? new OtfuseError(worker.killedBecause.code, worker.killedBecause.message) : crashed(reason);
      }),
    ]);
  }

  /** Test hook: asks the worker to die (needs OTFUSE_TEST_HOOKS=1 in its env). */
  async crashForTest(): Promise<void> {
    const worker = await this.workerFor('providers');
    await worker.remote.crashForTest();
    await worker.exited;
  }

  /** Test hook (needs OTFUSE_TEST_HOOKS=1 in the worker's env): runs a hook as a call, under the watchdog. */
  hookForTest(hook: TestHook, context: JobContext = {}): Promise<unknown> {
    return this.invoke('providers', hook, context, (remote, jobId) => remote.hookForTest(jobId, hook));
  }

  /** Stops the worker (e.g. to cancel everything, or on deactivate). */
  async restart(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.worker = undefined;
    worker.child.kill();
    await worker.exited;
  }

  dispose(): void {
    this.disposed = true;
    this.worker?.child.kill();
    this.worker = undefined;
  }

  private async invoke(
    method: EngineMethod,
    request: unknown,
    context: JobContext = {},
    via?: (remote: Comlink.Remote<HostApi>, jobId: string) => Promise<Outcome<unknown>>,
  ): Promise<unknown> {
    if (context.signal?.aborted) throw new OtfuseError('CANCELLED', 'cancelled by the user');
    const worker = await this.workerFor(method, true);
    // Cancelled while an idle worker was being replaced (before the abort listener below exists).
    if (context.signal?.aborted) {
      worker.calls--;
      throw new OtfuseError('CANCELLED', 'cancelled by the user');
    }
    const jobId = `${process.pid}-${++jobCounter}`;
    if (context.onProgress) worker.progress.set(jobId, context.onProgress);
    let grace: NodeJS.Timeout | undefined;
    const onAbort = () => {
      void worker.remote.cancel(jobId);
      // A worker busy in synchronous work never sees the cancel: end the call by restarting the worker.
      grace = setTimeout(
        () =>
          this.kill(worker, 'CANCELLED', `cancelled by the user (the worker did not stop within ${this.settings.cancelGraceMs / 1000} s, so it was restarted)`),
        this.settings.cancelGraceMs,
      );
    };
    context.signal?.addEventListener('abort', onAbort);
    let outcome: Outcome<unknown>;
    try {
      outcome = await Promise.race([
        via ? via(worker.remote, jobId) : worker.remote.call(jobId, method, request),
        worker.exited.then((reason) => {
          if (worker.killedBecause) throw new OtfuseError(worker.killedBecause.code, worker.killedBecause.message);
          throw crashed(reason);
        }),
      ]);
    } finally {
      worker.calls--;
      if (grace) clearTimeout(grace);
      worker.progress.delete(jobId);
      context.signal?.removeEventListener('abort', onAbort);
    }
    if (!outcome.ok) {
      await this.recycleIfBloated(worker);
      throw fromErrorInfo(outcome.error);
    }
    return outcome.value;
  }

  /** After a failed call: a worker still holding much memory (an out-of-memory failure, a huge input) is replaced. */
  private async recycleIfBloated(worker: Worker): Promise<void> {
    if (this.worker !== worker) return;
    let rss = worker.rss;
    try {
      rss = (await Promise.race([worker.remote.ping(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000))])).memory;
    } catch {
      /* use the last heartbeat */
    }
    if (rss > this.settings.recycleAboveBytes) {
      this.kill(worker, 'WORKER_CRASHED', `the worker was recycled after a failed call left it holding ${Math.round(rss / 2 ** 20)} MiB`);
    }
  }

  /** Kills a worker on the client's own initiative; its calls in flight fail with `code` and `message`. */
  private kill(worker: Worker, code: 'WORKER_CRASHED' | 'CANCELLED', message: string): void {
    if (worker.killedBecause) return;
    worker.killedBecause = { code, message };
    if (this.worker === worker) this.worker = undefined;
    this.options.onRecycle?.(message);
    worker.child.kill('SIGKILL');
  }

  /**
   * The worker for a call of `method`: malloc settings are fixed when a process starts, so an idle worker started
   * with other settings than the call wants (runtime/malloc.ts: finetuning's) is replaced first; a busy one serves
   * the call as it is (the settings change memory and speed, never results).
   */
  private async workerFor(method: EngineMethod, reserve = false): Promise<Worker> {
    const tunables = mallocTunables(method, { ...process.env, ...this.options.env });
    const current = this.worker;
    if (current && current.tunables !== tunables && current.calls === 0) {
      this.worker = undefined;
      current.child.kill();
      await current.exited;
    }
    const worker = this.start(tunables);
    // Counted in the same synchronous step as it is chosen: a concurrent call never replaces a worker about to serve.
    if (reserve) worker.calls++;
    return worker;
  }

  private start(tunables = ''): Worker {
    if (this.disposed) throw new OtfuseError('INTERNAL', 'the engine client was disposed');
    if (this.worker) return this.worker;
    const script = this.options.hostScript ?? path.join(__dirname, 'host.js');
    const child = fork(script, [], {
      execPath: this.options.execPath ?? process.execPath,
      env: {
        ...process.env,
        ...this.options.env,
        ...(tunables ? { GLIBC_TUNABLES: tunables } : {}),
        ELECTRON_RUN_AS_NODE: '1',
        [HEARTBEAT_ENV]: String(this.settings.heartbeatMs),
      },
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const progress = new Map<string, (event: ProgressEvent) => void>();
    const forward = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line.trim()) this.options.onLog?.(line);
    };
    child.stdout?.on('data', forward);
    child.stderr?.on('data', forward);
    child.on('message', (message: unknown) => {
      const env = message as Envelope;
      if (env?.ch === 'progress') progress.get(env.jobId)?.(env.event);
      else if (env?.ch === 'beat') {
        worker.lastBeat = Date.now();
        worker.rss = env.rss;
      }
    });
    const exited = new Promise<string>((resolve) => {
      child.once('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : `exited with code ${code}`));
      child.once('error', (err) => resolve(`failed to start: ${err.message}`));
    });
    const worker: Worker = { child, remote: Comlink.wrap<HostApi>(processEndpoint(child)), exited, progress, lastBeat: Date.now(), rss: 0, tunables, calls: 0 };
    this.worker = worker;
    // The watchdog: no heartbeat for deadlineMs means the worker is stuck; it is killed, its calls fail with why.
    const { deadlineMs, heartbeatMs } = this.settings;
    const watchdog = setInterval(
      () => {
        const silent = Date.now() - worker.lastBeat;
        if (silent > deadlineMs) {
          const message = `the otfuse worker stopped answering for ${(silent / 1000).toFixed(1)} s (blocked in synchronous work or hung), so it was killed; the next command starts a new one`;
          this.kill(worker, 'WORKER_CRASHED', message);
          if (!this.disposed) this.options.onCrash?.(message);
        }
      },
      Math.max(50, Math.min(heartbeatMs, deadlineMs / 4)),
    );
    watchdog.unref();
    void exited.then((reason) => {
      clearInterval(watchdog);
      if (this.worker === worker) {
        this.worker = undefined;
        if (!this.disposed) this.options.onCrash?.(reason);
      }
    });
    return worker;
  }
}

function crashed(reason: string): OtfuseError {
  return new OtfuseError('WORKER_CRASHED', `the otfuse worker process stopped (${reason}); the next command starts a new one`);
}

// What the extension host uses of the engine in its own process: the run-folder reader, .npy encoding for exports,
// the hostile-file-safe reader and the error type. The extension reaches the engine only through this module,
// worker/api (types), worker/types and contracts/ (lint: import-x/no-restricted-paths in eslint.config.mjs).
export { OtfuseError } from './errors';
export { deleteRun, listRuns, mapsPath, readRun, runPath, type RunEntry } from './runs/store';
export { listRunFilesAsync } from './runs/reader';
export { csvTable } from './io/csv';
export { encodeNpy } from './data/npy';
export { closeQuietly, openRegular, readExactly, readRegularFile } from './onnx/files';
export { DETAIL_PREFIX, TOP_MASS_PREFIX, TOP_PREFIX } from './fusion/mapdetail';
export { autotunes, fuseChoices, type FuseChoice, type FuseChoiceId } from './fusion/presets';
