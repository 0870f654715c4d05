// Execution provider choice: auto tries CUDA, then WebGPU, then CPU, and says why each one was or was not used.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { OtfuseError } from '../errors';
import { exists } from '../io/read';
import { createOrtSession, ORT_PROCESS_ENV, ortSessionOptions, ortTensor } from './session';

import type { ProviderChoice, ProviderName, ProviderReport } from '../types';

export type { ProviderChoice, ProviderName, ProviderReport };

const ortBinDir = (): string => path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch);

function cudaLibraryPresent(): boolean {
  try {
    return exists(path.join(ortBinDir(), 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

function vulkanLoaderPresent(): boolean {
  if (process.platform !== 'linux') return true; // Dawn uses D3D12/Metal elsewhere.
  const dirs = [
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/lib/x86_64-linux-gnu',
    '/usr/local/lib',
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
  ];
  return dirs.some((d) => exists(path.join(d, 'libvulkan.so.1')));
}

/** A one-node model (Identity) used to check that a provider can start a session. */
function probeModel(): Uint8Array {
  // Hand-encoded ModelProto: ir_version 8, opset 17, graph with Identity x -> y, float [1].
  // Built with onnx-proto at first use to keep it readable.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded lazily on first use
  const { onnx } = require('onnx-proto') as typeof import('onnx-proto');
  const vi = (name: string) =>
    onnx.ValueInfoProto.create({
      name,
      type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } },
    });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'probe', node: [{ opType: 'Identity', input: ['x'], output: ['y'] }], input: [vi('x')], output: [vi('y')] },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Probes a provider in a short-lived child process whose stderr is captured: a GPU stack that fails prints
 * native noise (Vulkan/XDG messages) that `auto` must not show the user. */
function tryProviderIsolated(name: ProviderName): string | undefined {
  const script = `const ort = require(${JSON.stringify(require.resolve('onnxruntime-node'))});
    (async () => {
      const s = await ort.InferenceSession.create(Buffer.from(process.argv[1], 'base64'), JSON.parse(process.argv[2]));
      await s.run({ x: new ort.Tensor('float32', new Float32Array([1]), [1]) });
      await s.release();
      process.stdout.write('OK');
    })().catch((e) => { process.stdout.write('FAIL ' + String(e && e.message || e).split('\\n')[0]); });`;
  const options = JSON.stringify(ortSessionOptions({ providers: [name], log: 'fatal' }));
  const r = spawnSync(process.execPath, ['-e', script, Buffer.from(probeModel()).toString('base64'), options], {
    encoding: 'utf8',
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...ORT_PROCESS_ENV, ELECTRON_RUN_AS_NODE: '1' },
  });
  if (r.stdout === 'OK') return undefined;
  if (r.stdout?.startsWith('FAIL ')) return r.stdout.slice(5, 245);
  return `the probe process ${r.signal ? `was killed by ${r.signal}` : `exited with code ${r.status}`}`;
}

async function tryProvider(name: ProviderName): Promise<string | undefined> {
  try {
    const session = await createOrtSession(probeModel(), { providers: [name], log: 'fatal' });
    await session.run({ x: ortTensor('float32', new Float32Array([1]), [1]) });
    await session.release();
    return undefined;
  } catch (err) {
    return (err as Error).message.split('\n')[0].slice(0, 240);
  }
}

const cache = new Map<ProviderChoice, Promise<ProviderReport>>();

/** Resolves a provider choice once per process. An explicit GPU choice that cannot run is an error. */
export function resolveProvider(choice: ProviderChoice = 'auto'): Promise<ProviderReport> {
  let pending = cache.get(choice);
  if (!pending) {
    pending = resolveUncached(choice);
    cache.set(choice, pending);
    pending.catch(() => cache.delete(choice));
  }
  return pending;
}

async function resolveUncached(choice: ProviderChoice): Promise<ProviderReport> {
  if (!['auto', 'cpu', 'cuda', 'webgpu'].includes(choice)) {
    throw new OtfuseError('BAD_USAGE', `unknown execution provider '${choice}' (use auto, cpu, cuda or webgpu)`);
  }
  const reasons: string[] = [];
  if (choice === 'cpu') return { used: 'cpu', requested: choice, reasons: ['cpu: requested'] };
  const candidates: ProviderName[] = choice === 'auto' ? ['cuda', 'webgpu'] : [choice];
  for (const name of candidates) {
    const why = await checkProvider(name, choice === 'auto');
    if (why === undefined) {
      reasons.push(`${name}: available, used`);
      return { used: name, requested: choice, reasons };
    }
    reasons.push(`${name}: not used (${why})`);
  }
  if (choice !== 'auto') {
    throw new OtfuseError('PROVIDER', `execution provider '${choice}' is not available: ${reasons.join('; ')}. Use --provider auto or cpu.`);
  }
  reasons.push('cpu: used (fallback)');
  return { used: 'cpu', requested: choice, reasons };
}

async function checkProvider(name: ProviderName, quiet: boolean): Promise<string | undefined> {
  // In auto mode skip attempts that are sure to fail: ONNX Runtime prints native errors to stderr on failure.
  if (name === 'cuda' && quiet && !cudaLibraryPresent()) {
    return 'CUDA provider libraries are not installed; install them with ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node';
  }
  if (name === 'webgpu' && quiet && !vulkanLoaderPresent()) {
    return 'no Vulkan loader (libvulkan.so.1) found, so WebGPU has no GPU adapter';
  }
  // In auto mode a GPU provider is first probed out of process (quietly); only one that works is started here.
  const failure = quiet ? (tryProviderIsolated(name) ?? (await tryProvider(name))) : await tryProvider(name);
  if (failure === undefined) return undefined;
  if (name === 'cuda') return `CUDA provider failed to start: ${failure}`;
  return `WebGPU has no usable GPU adapter: ${failure}`;
}

export function describeProvider(report: ProviderReport): string {
  const skipped = report.reasons.filter((r) => !r.startsWith(`${report.used}:`));
  return skipped.length ? `provider ${report.used} (${skipped.join('; ')})` : `provider ${report.used}`;
}
