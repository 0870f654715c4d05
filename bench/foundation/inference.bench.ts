// Inference throughput of a bundled example on CPU (batch 1 vs 256) and peak RSS of `otfuse eval` vs dataset size.
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { ModelRunner } from '../../worker/runtime/runner';
import { machine, markdownTable, runWithPeakRss } from '../common';

async function throughput(batchSize: number, samples: number): Promise<number> {
  const runner = await ModelRunner.create(loadModel('examples/vit48_s10.onnx'), { provider: 'cpu' });
  const ds = openDataset('examples/data/fmnist-test-2k.json');
  const binding = runner.bind(ds);
  const batch = ds.take(Array.from({ length: batchSize }, (_, i) => i % ds.size));
  await runner.run(batch, binding); // warm-up
  const t0 = performance.now();
  let done = 0;
  while (done < samples) {
    await runner.run(batch, binding);
    done += batchSize;
  }
  const s = (performance.now() - t0) / 1000;
  await runner.release();
  return done / s;
}

async function main(): Promise<void> {
  console.log(`machine: ${machine()}`);
  const rows: (string | number)[][] = [];
  for (const bs of [1, 256]) rows.push(['vit48_s10', bs, Math.round(await throughput(bs, bs === 1 ? 2000 : 20480))]);
  console.log(markdownTable(['model', 'batch', 'images/s (CPU)'], rows));
  const cli = path.resolve('dist/cli.js');
  const fm = '/usr/share/datasets/fashion-mnist';
  const rss: (string | number)[][] = [];
  for (const limit of [1000, 10000]) {
    const r = runWithPeakRss(cli, [
      'eval',
      'examples/vit48_s10.onnx',
      '--data',
      `${fm}/t10k-images-idx3-ubyte.gz`,
      '--labels',
      `${fm}/t10k-labels-idx1-ubyte.gz`,
      '--mean',
      '0.286',
      '--std',
      '0.353',
      '--limit',
      String(limit),
      '--json',
    ]);
    rss.push([limit, r.seconds.toFixed(2), r.peakMiB.toFixed(0)]);
  }
  console.log(markdownTable(['images evaluated', 'wall s', 'peak RSS MiB'], rss));
}

void main();
