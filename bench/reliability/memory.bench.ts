// Peak memory of reading a large compressed dataset: `otfuse eval` (streamed) side by side with NumPy's
// np.load(...)['x'] (the anchor, which inflates a member whole), on a 1 GB (≈1 MB compressed) .npz and a gzip
// IDX declaring 784 MB evaluated with --limit 100. Run: node dist-bench/reliability/memory.bench.js
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { machine, markdownTable, runWithPeakRss } from '../common';
import { wideModel, writeDeflatedNpz } from '../../test/reliability/helpers';

const ROOT = process.cwd();
const CLI = path.join(ROOT, 'dist', 'cli.js');
const dir = path.join(ROOT, '.cache', 'bench-reliability');
const WIDTH = 256 * 1024;
const N = 1024;

function numpyPeak(file: string): { seconds: number; peakMiB: number } {
  const script = `import numpy as np, resource, sys, time
t = time.time()
x = np.load(sys.argv[1])['x']
s = float(x.mean())
print(time.time() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)`;
  const r = spawnSync('/usr/bin/python3', ['-c', script, file], { encoding: 'utf8' });
  const [seconds, kb] = r.stdout.trim().split(/\s+/).map(Number);
  return { seconds, peakMiB: kb / 1024 };
}

async function main(): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const model = path.join(dir, 'wide.onnx');
  wideModel(model, WIDTH);
  const npz = path.join(dir, 'big.npz');
  if (!fs.existsSync(npz)) {
    await writeDeflatedNpz(npz, [
      {
        name: 'x',
        descr: '<f4',
        shape: [N, WIDTH],
        chunks: function* () {
          for (let i = 0; i < N; i++) yield new Uint8Array(new Float32Array(WIDTH).fill((i % 7) / 7).buffer);
        },
      },
      {
        name: 'y',
        descr: '<i8',
        shape: [N],
        chunks: function* () {
          yield new Uint8Array(BigInt64Array.from({ length: N }, (_, i) => BigInt(i % 10)).buffer);
        },
      },
    ]);
  }
  const images = path.join(dir, 'images-idx3-ubyte.gz');
  const labels = path.join(dir, 'labels-idx1-ubyte');
  const n = 1_000_000;
  if (!fs.existsSync(images)) {
    const gz = zlib.createGzip();
    const sink = fs.createWriteStream(images);
    gz.pipe(sink);
    const closed = new Promise<void>((resolve) => sink.on('close', () => resolve()));
    const put = (b: Buffer) =>
      new Promise<void>((resolve) => {
        if (gz.write(b)) resolve();
        else gz.once('drain', () => resolve());
      });
    const head = Buffer.alloc(16);
    head.writeUInt32BE(0x803, 0);
    head.writeUInt32BE(n, 4);
    head.writeUInt32BE(28, 8);
    head.writeUInt32BE(28, 12);
    await put(head);
    const zeros = Buffer.alloc(8 * 2 ** 20);
    for (let left = n * 784; left > 0; left -= zeros.length) await put(left >= zeros.length ? zeros : zeros.subarray(0, left));
    gz.end();
    await closed;
    const lab = Buffer.alloc(8 + n);
    lab.writeUInt32BE(0x801, 0);
    lab.writeUInt32BE(n, 4);
    fs.writeFileSync(labels, lab);
  }
  const idxModel = path.join(dir, 'wide784.onnx');
  wideModel(idxModel, [1, 28, 28]);
  const rows: (string | number)[][] = [];
  // Interleaved, two rounds (the machine is shared).
  for (let round = 1; round <= 2; round++) {
    const a = runWithPeakRss(CLI, ['eval', model, '--data', npz, '--batch-size', '16', '--provider', 'cpu', '--json']);
    rows.push([
      `otfuse eval, 1 GB .npz (${(fs.statSync(npz).size / 2 ** 20).toFixed(2)} MiB compressed), batch 16`,
      round,
      a.peakMiB.toFixed(0),
      a.seconds.toFixed(2),
    ]);
    const b = numpyPeak(npz);
    rows.push(["NumPy np.load(npz)['x'].mean() (anchor)", round, b.peakMiB.toFixed(0), b.seconds.toFixed(2)]);
    const c = runWithPeakRss(CLI, [
      'eval',
      idxModel,
      '--data',
      images,
      '--labels',
      labels,
      '--mean',
      '0',
      '--std',
      '1',
      '--limit',
      '100',
      '--provider',
      'cpu',
      '--json',
    ]);
    rows.push(['otfuse eval --limit 100, gzip IDX declaring 784 MB', round, c.peakMiB.toFixed(0), c.seconds.toFixed(2)]);
  }
  console.log(`machine: ${machine()}`);
  console.log(markdownTable(['run', 'round', 'peak RSS (MiB)', 'wall (s)'], rows));
}

void main();
