// The Fashion-MNIST splits of the quality benchmark, written once into .cache/quality/ as IDX files + JSON specs:
// train54k (the 60k training images minus the hold-out, the fixtures' training set), calib1k (the first 1,000
// hold-out images: fusion activations and the auto-tune's held-out slice), val5k (the other 5,000 hold-out images:
// every choice of the benchmark is made on them) and the official 10k test set (reported only).
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { readIdx } from '../../worker/data/idx';

export const FMNIST = '/usr/share/datasets/fashion-mnist';
const NORM = { scale: 255, mean: [0.286], std: [0.353] };

export interface Splits {
  train: string;
  calib: string;
  val: string;
  test: string;
}

function idx(shape: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header[2] = 0x08;
  header[3] = shape.length;
  shape.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return zlib.gzipSync(Buffer.concat([header, Buffer.from(data)]), { level: 1 });
}

function write(dir: string, name: string, images: Uint8Array, labels: Uint8Array, picks: number[]): string {
  const px = 28 * 28;
  const img = new Uint8Array(picks.length * px);
  const lab = new Uint8Array(picks.length);
  picks.forEach((p, i) => {
    img.set(images.subarray(p * px, (p + 1) * px), i * px);
    lab[i] = labels[p];
  });
  fs.writeFileSync(path.join(dir, `${name}-images-idx3-ubyte.gz`), idx([picks.length, 28, 28], img));
  fs.writeFileSync(path.join(dir, `${name}-labels-idx1-ubyte.gz`), idx([picks.length], lab));
  const spec = path.join(dir, `${name}.json`);
  fs.writeFileSync(spec, JSON.stringify({ path: `${name}-images-idx3-ubyte.gz`, labels: `${name}-labels-idx1-ubyte.gz`, ...NORM }));
  return spec;
}

export function prepareSplits(dir = path.resolve('.cache/quality/data')): Splits {
  const out: Splits = {
    train: path.join(dir, 'train54k.json'),
    calib: path.join(dir, 'calib1k.json'),
    val: path.join(dir, 'val5k.json'),
    test: path.join(dir, 'test10k.json'),
  };
  if (Object.values(out).every((f) => fs.existsSync(f))) return out;
  fs.mkdirSync(dir, { recursive: true });
  const holdout = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'bench', 'quality', 'holdout-indices.json'), 'utf8')) as { indices: number[] })
    .indices;
  const images = readIdx(path.join(FMNIST, 'train-images-idx3-ubyte.gz')).data;
  const labels = readIdx(path.join(FMNIST, 'train-labels-idx1-ubyte.gz')).data;
  const held = new Set(holdout);
  const train = Array.from({ length: 60000 }, (_, i) => i).filter((i) => !held.has(i));
  write(dir, 'train54k', images, labels, train);
  write(dir, 'calib1k', images, labels, holdout.slice(0, 1000));
  write(dir, 'val5k', images, labels, holdout.slice(1000));
  fs.writeFileSync(
    out.test,
    JSON.stringify({ path: path.join(FMNIST, 't10k-images-idx3-ubyte.gz'), labels: path.join(FMNIST, 't10k-labels-idx1-ubyte.gz'), ...NORM }),
  );
  return out;
}
