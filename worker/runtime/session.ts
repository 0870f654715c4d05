// The one owner of ONNX Runtime sessions: the process's ORT setup (no telemetry, no log output) and session
// options from settings passed as values. Every engine module gets its sessions here (lint forbids
// `InferenceSession.create` elsewhere; runner.ts binds datasets to a model's session and runs batches); code that
// runs ORT in another thread or process (syncrun.ts, the provider probe) takes its options and environment here.
// onnxruntime-node (native) loads on the first session, so importing this module stays cheap.
import type * as Ort from 'onnxruntime-node';

/**
 * Environment for every process or thread that loads ONNX Runtime. The Linux build of onnxruntime-node 1.30 links
 * Microsoft's 1DS telemetry SDK, which creates an empty `mat-debug-<pid>.log` in the temp folder in every process
 * that creates a session (about 150 per test run), unless ORT_DISABLE_TELEMETRY is set when the ORT environment
 * starts. otfuse sends nothing anywhere, so it is always set.
 */
export const ORT_PROCESS_ENV: Readonly<Record<string, string>> = { ORT_DISABLE_TELEMETRY: '1' };

let ortModule: typeof Ort | undefined;

/** onnxruntime-node, loaded on first use with the process set up: telemetry off, ORT's own log at 'error'. */
export function ortRuntime(): typeof Ort {
  if (!ortModule) {
    Object.assign(process.env, ORT_PROCESS_ENV);
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded lazily on first use
    const ort = require('onnxruntime-node') as typeof Ort;
    ort.env.logLevel = 'error';
    ortModule = ort;
  }
  return ortModule;
}

/** How one ORT session runs. Every field has a default, so callers name only what differs. */
export interface OrtSessionSettings {
  /** Execution providers in order of preference (default ['cpu']). */
  providers?: string[];
  /** Intra-op threads; 0 or undefined: ONNX Runtime's choice (one per physical core). */
  threads?: number;
  /** Graph optimisation (default 'all'; gradient checks and probes want the graph run as written: 'disabled'). */
  optimization?: 'all' | 'disabled';
  /** CPU memory arena (default on). Off for a few large products, where the arena would keep their high-water mark. */
  memArena?: boolean;
  /**
   * Intra-op pool threads busy-wait for the next node instead of sleeping (ORT's own default: on; otfuse's: off).
   * A process here holds several sessions (a fusion: capture stages, cost and Gram products, float64 products in
   * runtime/syncrun.ts's thread) and runs JavaScript between their calls; each session's pool spinning after its
   * call takes a core from the JavaScript and from the next session's threads. BERT-base through the default fuse:
   * 206 s wall / 357 CPU s spinning, 173 s / 260 s not, the same fused bytes (BENCHMARKS.md, "The default path").
   */
  spinning?: boolean;
  /** Log severity of the session: 'error' (default) or 'fatal' (probes whose failures are expected). */
  log?: 'error' | 'fatal';
}

/** ORT's session options for `settings` (plain data: also sent to the sync-run worker thread and the probe child). */
export function ortSessionOptions(settings: OrtSessionSettings = {}): Ort.InferenceSession.SessionOptions {
  const options: Ort.InferenceSession.SessionOptions = {
    executionProviders: settings.providers ?? ['cpu'],
    graphOptimizationLevel: settings.optimization ?? 'all',
    logSeverityLevel: settings.log === 'fatal' ? 4 : 3,
  };
  if (settings.threads) options.intraOpNumThreads = settings.threads;
  if (settings.memArena === false) options.enableCpuMemArena = false;
  if (!settings.spinning) options.extra = { session: { intra_op: { allow_spinning: '0' } } };
  return options;
}

/** A new ORT session for a serialized model. Errors are ORT's (callers say what the model was). */
export async function createOrtSession(model: Uint8Array, settings: OrtSessionSettings = {}): Promise<Ort.InferenceSession> {
  return ortRuntime().InferenceSession.create(model, ortSessionOptions(settings));
}

/** An ORT tensor (the module loaded as above). */
export function ortTensor<T extends Ort.Tensor.Type>(type: T, data: Ort.Tensor.DataTypeMap[T], dims: readonly number[]): Ort.TypedTensor<T> {
  return new (ortRuntime().Tensor)(type, data, dims) as Ort.TypedTensor<T>;
}

/** ONNX Runtime's version numbers, for run.json. */
export function ortVersions(): Record<string, string> | undefined {
  return (ortRuntime().env as unknown as { versions?: Record<string, string> }).versions;
}
