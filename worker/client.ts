// Starts the worker process lazily and offers the same EngineApi as the in-process engine. A crash of the worker
// rejects the calls in flight with WORKER_CRASHED; the next call starts a fresh worker.
import { fork, ChildProcess } from 'node:child_process';
import path from 'node:path';
import * as Comlink from 'comlink';
import { OtfuseError, fromErrorInfo } from './errors';
import type { EngineApi } from './api';
import { Envelope, EngineMethod, HostApi, processEndpoint } from './ipc';
import type { JobContext, ProgressEvent } from './types';

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
}

interface Worker {
  child: ChildProcess;
  remote: Comlink.Remote<HostApi>;
  exited: Promise<string>;
  progress: Map<string, (event: ProgressEvent) => void>;
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

  providers(choice?: Parameters<EngineApi['providers']>[0]) { return this.invoke('providers', choice) as ReturnType<EngineApi['providers']>; }
  inspect(request: Parameters<EngineApi['inspect']>[0]) { return this.invoke('inspect', request) as ReturnType<EngineApi['inspect']>; }
  evaluate(request: Parameters<EngineApi['evaluate']>[0], context?: JobContext) { return this.invoke('evaluate', request, context) as ReturnType<EngineApi['evaluate']>; }
  fuse(request: Parameters<EngineApi['fuse']>[0], context?: JobContext) { return this.invoke('fuse', request, context) as ReturnType<EngineApi['fuse']>; }
  finetune(request: Parameters<EngineApi['finetune']>[0], context?: JobContext) { return this.invoke('finetune', request, context) as ReturnType<EngineApi['finetune']>; }
  finetuneRun(request: Parameters<EngineApi['finetuneRun']>[0], context?: JobContext) { return this.invoke('finetuneRun', request, context) as ReturnType<EngineApi['finetuneRun']>; }
  describeData(files: string[]) { return this.invoke('describeData', files) as ReturnType<EngineApi['describeData']>; }
  reevaluateRun(request: Parameters<EngineApi['reevaluateRun']>[0], context?: JobContext) { return this.invoke('reevaluateRun', request, context) as ReturnType<EngineApi['reevaluateRun']>; }

  async ping(): Promise<{ pid: number; memory: number }> {
    const worker = this.start();
    return Promise.race([worker.remote.ping(), worker.exited.then((reason) => { throw crashed(reason); })]);
  }

  /** Test hook: asks the worker to die (needs OTFUSE_TEST_HOOKS=1 in its env). */
  async crashForTest(): Promise<void> {
    const worker = this.start();
    await worker.remote.crashForTest();
    await worker.exited;
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

  private async invoke(method: EngineMethod, request: unknown, context: JobContext = {}): Promise<unknown> {
    if (context.signal?.aborted) throw new OtfuseError('CANCELLED', 'cancelled by the user');
    const worker = this.start();
    const jobId = `${process.pid}-${++jobCounter}`;
    if (context.onProgress) worker.progress.set(jobId, context.onProgress);
    const onAbort = () => { void worker.remote.cancel(jobId); };
    context.signal?.addEventListener('abort', onAbort);
    try {
      const outcome = await Promise.race([
        worker.remote.call(jobId, method, request),
        worker.exited.then((reason) => { throw crashed(reason); }),
      ]);
      if (!outcome.ok) throw fromErrorInfo(outcome.error);
      return outcome.value;
    } finally {
      worker.progress.delete(jobId);
      context.signal?.removeEventListener('abort', onAbort);
    }
  }

  private start(): Worker {
    if (this.disposed) throw new OtfuseError('INTERNAL', 'the engine client was disposed');
    if (this.worker) return this.worker;
    const script = this.options.hostScript ?? path.join(__dirname, 'host.js');
    const child = fork(script, [], {
      execPath: this.options.execPath ?? process.execPath,
      // Transparent huge pages for malloc: large OT buffers (75 MB at 3072²) page-fault ~2× faster with them.
      env: { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1', ...process.env, ...this.options.env, ELECTRON_RUN_AS_NODE: '1' },
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const progress = new Map<string, (event: ProgressEvent) => void>();
    const forward = (chunk: Buffer) => { for (const line of chunk.toString().split('\n')) if (line.trim()) this.options.onLog?.(line); };
    child.stdout?.on('data', forward);
    child.stderr?.on('data', forward);
    child.on('message', (message: unknown) => {
      const env = message as Envelope;
      if (env?.ch === 'progress') progress.get(env.jobId)?.(env.event);
    });
    const exited = new Promise<string>((resolve) => {
      child.once('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : `exited with code ${code}`));
      child.once('error', (err) => resolve(`failed to start: ${err.message}`));
    });
    const worker: Worker = { child, remote: Comlink.wrap<HostApi>(processEndpoint(child)), exited, progress };
    this.worker = worker;
    void exited.then((reason) => {
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
