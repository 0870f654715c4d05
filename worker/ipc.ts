// The wire between the extension host and the worker process: a child-process IPC channel carrying two kinds of
// messages — comlink RPC (requests/results) and job events (progress), which comlink's proxy() callbacks cannot
// carry here because their MessagePorts do not cross a process boundary.
import type { Endpoint } from 'comlink';
import type { ErrorInfo } from './errors';
import type { ProgressEvent } from './types';

export interface RpcEnvelope {
  ch: 'rpc';
  data: unknown;
}
export interface ProgressEnvelope {
  ch: 'progress';
  jobId: string;
  event: ProgressEvent;
}
/** The worker's heartbeat: sent from its event loop, so it stops when the worker is blocked in synchronous work. */
export interface BeatEnvelope {
  ch: 'beat';
  rss: number;
}
export type Envelope = RpcEnvelope | ProgressEnvelope | BeatEnvelope;

/** Environment variable carrying the heartbeat period (ms) to the worker. */
export const HEARTBEAT_ENV = 'OTFUSE_HEARTBEAT_MS';

/** Test hooks of the worker (enabled only with OTFUSE_TEST_HOOKS=1): block the event loop, or fail a call
 * after allocating memory that stays referenced. */
export type TestHook = { kind: 'block'; ms: number } | { kind: 'leak'; mb: number };

/** A result that keeps the error's code and location across the boundary (comlink would keep only the message). */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: ErrorInfo };

export type EngineMethod =
  | 'providers'
  | 'inspect'
  | 'check'
  | 'evaluate'
  | 'fuse'
  | 'finetune'
  | 'importHf'
  | 'exportHf'
  | 'finetuneRun'
  | 'reevaluateRun'
  | 'describeData'
  | 'merge'
  | 'mergeMethods'
  | 'sharedBase';

/** What the worker process exposes over comlink. */
export interface HostApi {
  call(jobId: string, method: EngineMethod, request: unknown): Promise<Outcome<unknown>>;
  cancel(jobId: string): void;
  ping(): Promise<{ pid: number; memory: number }>;
  /** Test hook: makes the worker process die (enabled only with OTFUSE_TEST_HOOKS=1). */
  crashForTest(): void;
  /** Test hooks as a failing call (enabled only with OTFUSE_TEST_HOOKS=1). */
  hookForTest(jobId: string, hook: TestHook): Promise<Outcome<unknown>>;
}

interface ProcessLike {
  send?(message: unknown): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

/** comlink's listener type (a DOM type; named through Endpoint so the engine builds without the DOM lib). */
type Listener = Parameters<Endpoint['addEventListener']>[1];

/** A comlink Endpoint over a child-process IPC channel, using only the 'rpc' envelopes. */
export function processEndpoint(target: ProcessLike): Endpoint {
  const listeners = new Map<Listener, (message: unknown) => void>();
  return {
    postMessage(data: unknown) {
      target.send?.({ ch: 'rpc', data } satisfies RpcEnvelope);
    },
    addEventListener(_type: string, listener: Listener) {
      const wrapped = (message: unknown) => {
        const env = message as Envelope;
        if (!env || env.ch !== 'rpc') return;
        const event = { data: env.data } as Parameters<Extract<Listener, (...a: never[]) => unknown>>[0];
        if (typeof listener === 'function') listener(event);
        else listener.handleEvent(event);
      };
      listeners.set(listener, wrapped);
      target.on('message', wrapped);
    },
    removeEventListener(_type: string, listener: Listener) {
      const wrapped = listeners.get(listener);
      if (wrapped) target.off('message', wrapped);
      listeners.delete(listener);
    },
  };
}
