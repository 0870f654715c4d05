// Helpers for the hostile-input tests: models with external data, CLI runs with a wall-clock and memory watch.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { loadModel } from '../../worker/onnx/model';
import { CLI, ROOT, VIT } from '../helpers';

/** Writes the fixture ViT into `dir` with one 2-D initializer moved to external data at `location`. */
export function modelWithExternal(dir: string, location: string, name = 'ext.onnx'): { file: string; tensor: string; bytes: number } {
  const model = loadModel(path.join(VIT, 'vit48_s10.onnx'));
  const target = model.graph.initializer!.find((t) => (t.dims ?? []).length === 2)!;
  const bytes = target.rawData!.length;
  target.externalData = [{ key: 'location', value: location }];
  target.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  target.rawData = new Uint8Array(0);
  const file = path.join(dir, name);
  fs.writeFileSync(file, onnx.ModelProto.encode(model.proto).finish());
  return { file, tensor: target.name!, bytes };
}

export interface WatchedRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  peakRssMiB: number;
  timedOut: boolean;
}

/** Runs the built CLI with a timeout; the child reports its own peak RSS (maxRSS) on exit through an env hook. */
export function runCliWatched(args: string[], options: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): WatchedRun {
  const r = spawnSync(process.execPath, ['--require', path.join(ROOT, 'test', 'reliability', 'maxrss.cjs'), CLI, ...args], {
    cwd: options.cwd ?? ROOT,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 60_000,
    killSignal: 'SIGKILL',
    env: { ...process.env, ...options.env },
  });
  const m = /OTFUSE_MAXRSS_KB=(\d+)/.exec(r.stderr ?? '');
  const stderr = (r.stderr ?? '').replace(/OTFUSE_MAXRSS_KB=\d+\n?/, '');
  return {
    code: r.status,
    signal: r.signal,
    stdout: r.stdout ?? '',
    stderr,
    peakRssMiB: m ? Number(m[1]) / 1024 : NaN,
    timedOut: r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT',
  };
}

/** A stack trace in user-facing output ("    at fn (file:line:col)"). */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+:\d+:\d+\)?$/m.test(text);
}

/** A tiny classifier over a wide input: x [N, …sample] → mean → × w [1, 10] + b → logits [N, 10]. */
export function wideModel(file: string, width: number | number[]): void {
  const sample = typeof width === 'number' ? [width] : width;
  const axes = sample.map((_, i) => i + 1);
  const vi = (name: string, dims: (number | string)[]) =>
    onnx.ValueInfoProto.create({
      name,
      type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
    });
  const tensor = (name: string, dims: number[], values: number[]) =>
    onnx.TensorProto.create({ name, dims, dataType: 1, rawData: new Uint8Array(Float32Array.from(values).buffer) });
  const graph = onnx.GraphProto.create({
    name: 'wide',
    node: [
      {
        opType: 'ReduceMean',
        input: ['x'],
        output: ['m0'],
        name: 'mean',
        attribute: [{ name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: axes }],
      },
      { opType: 'Reshape', input: ['m0', 'shape'], output: ['m'], name: 'flatten' },
      { opType: 'MatMul', input: ['m', 'w'], output: ['mw'], name: 'scale' },
      { opType: 'Add', input: ['mw', 'b'], output: ['logits'], name: 'bias' },
    ],
    initializer: [
      tensor('w', [1, 10], [1, -1, 2, -2, 0.5, -0.5, 3, -3, 0, 1]),
      tensor('b', [10], [0, 0.1, 0, 0.2, 0, 0.3, 0, 0.4, 0, 0.5]),
      onnx.TensorProto.create({ name: 'shape', dims: [2], dataType: 7, rawData: new Uint8Array(BigInt64Array.from([-1n, 1n]).buffer) }),
    ],
    input: [vi('x', ['N', ...sample])],
    output: [vi('logits', ['N', 10])],
  });
  const proto = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph, producerName: 'otfuse-test' });
  fs.writeFileSync(file, onnx.ModelProto.encode(proto).finish());
}

function npyHeader(descr: string, shape: number[]): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const out = Buffer.alloc(10 + header.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  return out;
}

export interface NpzMember {
  name: string;
  descr: string;
  shape: number[];
  /** Bytes of the data, produced chunk by chunk. */ chunks: () => Iterable<Uint8Array>;
}

/** Writes a deflated .npz without ever holding a member's data whole (for multi-GB test files). */
export async function writeDeflatedNpz(file: string, members: NpzMember[]): Promise<void> {
  const zlib = await import('node:zlib');
  const out = fs.openSync(file, 'w');
  let offset = 0;
  const central: Buffer[] = [];
  const write = (b: Uint8Array) => {
    fs.writeSync(out, b, 0, b.length, offset);
    offset += b.length;
  };
  for (const m of members) {
    const name = Buffer.from(`${m.name}.npy`);
    const localOffset = offset;
    write(Buffer.alloc(30 + name.length)); // patched below
    const deflate = zlib.createDeflateRaw({ level: 6 });
    let crc = 0;
    let size = 0;
    let comp = 0;
    deflate.on('data', (c: Buffer) => {
      write(c);
      comp += c.length;
    });
    const done = new Promise<void>((resolve, reject) => {
      deflate.on('end', resolve);
      deflate.on('error', reject);
    });
    const feed = (b: Uint8Array) =>
      new Promise<void>((resolve) => {
        crc = zlib.crc32(b, crc);
        size += b.length;
        if (deflate.write(b)) resolve();
        else deflate.once('drain', resolve);
      });
    await feed(npyHeader(m.descr, m.shape));
    for (const c of m.chunks()) await feed(c);
    deflate.end();
    await done;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(comp, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    fs.writeSync(out, Buffer.concat([local, name]), 0, 30 + name.length, localOffset);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(8, 10);
    c.writeUInt32LE(crc >>> 0, 16);
    c.writeUInt32LE(comp, 20);
    c.writeUInt32LE(size, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(localOffset, 42);
    central.push(c, name);
  }
  const cd = Buffer.concat(central);
  const cdOffset = offset;
  write(cd);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(cdOffset, 16);
  write(end);
  fs.closeSync(out);
}
