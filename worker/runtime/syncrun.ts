// Synchronous ONNX Runtime calls for code that must stay synchronous (the OT solvers fusion calls, the weight
// alignment products): a worker thread owns the sessions; the caller posts a job, blocks on Atomics.wait until the
// worker signals, and takes the reply with receiveMessageOnPort — no event-loop turn needed. Any failure (no
// worker, a session error, a timeout) returns undefined and the caller uses its JS path.
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { ORT_PROCESS_ENV, ortSessionOptions } from './session';

export interface SyncTensor {
  type: 'float64' | 'float32' | 'int64' | 'bool';
  data: Float64Array | Float32Array | BigInt64Array | Uint8Array;
  dims: number[];
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
const sessions = new Map();
let port;
parentPort.on('message', async (job) => {
  if (job.port) { port = job.port; return; }
  const ctl = new Int32Array(job.ctl);
  try {
    let s = sessions.get(job.key);
    if (!s) {
      s = await ort.InferenceSession.create(job.model, job.options);
      sessions.set(job.key, s);
    }
    const feeds = {};
    for (const [name, t] of Object.entries(job.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    const out = await s.run(feeds);
    const reply = {}, transfer = [];
    for (const [name, t] of Object.entries(out)) {
      reply[name] = { type: t.type, data: t.data, dims: t.dims.map(Number) };
      if (t.data.buffer && !(t.data.buffer instanceof SharedArrayBuffer) && !transfer.includes(t.data.buffer)) transfer.push(t.data.buffer);
    }
    try { port.postMessage({ ok: true, out: reply }, transfer); } catch { port.postMessage({ ok: true, out: reply }); }
  } catch (err) {
    port.postMessage({ ok: false, error: String(err && err.message ? err.message : err) });
  }
  Atomics.store(ctl, 0, 1);
  Atomics.notify(ctl, 0);
});
`;

let worker: Worker | undefined;
let port: MessagePort | undefined;
let broken = false;

function start(): boolean {
  if (broken) return false;
  if (worker) return true;
  try {
    Object.assign(process.env, ORT_PROCESS_ENV); // before the thread loads ORT (the native library reads the process environment)
    worker = new Worker(WORKER_SOURCE, {
      eval: true,
      env: { ...process.env, ...ORT_PROCESS_ENV },
      workerData: { ortPath: require.resolve('onnxruntime-node') },
    });
    worker.unref();
    worker.on('error', () => {
      broken = true;
      worker = undefined;
    });
    const channel = new MessageChannel();
    port = channel.port1;
    port.unref();
    worker.postMessage({ port: channel.port2 }, [channel.port2]);
    return true;
  } catch {
    broken = true;
    return false;
  }
}

/** Last error message of a failed call (for diagnostics). */
export let lastSyncError: string | undefined;

/**
 * Runs model `model` (cached per `key`) on `feeds` and returns every output, synchronously; undefined on any failure.
 */
export function runSync(
  key: string,
  model: Uint8Array,
  feeds: Record<string, SyncTensor>,
  options: { providers?: string[]; threads?: number; timeoutMs?: number; transferFeeds?: boolean } = {},
): Record<string, SyncTensor> | undefined {
  if (!start()) return undefined;
  const ctl = new SharedArrayBuffer(4);
  // transferFeeds: the feeds' buffers move to the worker instead of being copied (the caller must not reuse them).
  const transfer = options.transferFeeds ? [...new Set(Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer))] : [];
  // a few large products: a memory arena would keep their high-water mark
  const sessionOptions = ortSessionOptions({ providers: options.providers, threads: options.threads, memArena: false });
  worker!.postMessage({ key, model, feeds, ctl, options: sessionOptions }, transfer);
  const res = Atomics.wait(new Int32Array(ctl), 0, 0, options.timeoutMs ?? 300_000);
  const msg = receiveMessageOnPort(port!)?.message as { ok: boolean; out?: Record<string, SyncTensor>; error?: string } | undefined;
  if (res === 'timed-out' || !msg) {
    lastSyncError = res === 'timed-out' ? 'timed out' : 'no reply';
    broken = true;
    void worker?.terminate();
    worker = undefined;
    return undefined;
  }
  if (!msg.ok) {
    lastSyncError = msg.error;
    return undefined;
  }
  return msg.out;
}
