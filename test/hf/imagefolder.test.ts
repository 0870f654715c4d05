// Image folders (one sub-folder per class, PNG/JPEG) preprocessed from preprocessor_config.json: the tensors PIL +
// ViTImageProcessor's recipe gives (resize BILINEAR, rescale, normalize), labels from config.json's label2id,
// and an HF ViT evaluates on PNGs exactly as on the same images from IDX files.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { PNG } from 'pngjs';
import { engine } from '../../worker/api';
import { openDataset } from '../../worker/data/dataset';
import { readNpz } from '../../worker/data/npy';
import { OtfuseError } from '../../worker/errors';
import '../../worker/hf';
import { EXAMPLES, tempDir } from '../helpers';
import { HF, hfDir } from './helpers';

test('PNG and JPEG files resized and normalised as PIL + ViTImageProcessor do; labels from label2id', () => {
  const ref = readNpz(path.join(HF, 'reference', 'images.npz'));
  const order = JSON.parse(fs.readFileSync(path.join(HF, 'reference', 'images.json'), 'utf8')) as string[];
  const ds = openDataset({ path: path.join(HF, 'images'), preprocessor: hfDir('vit-tiny-rgb-bf16-sharded') } as never);
  assert.equal(ds.size, 4);
  // Folders 'a' and 'c' are classes 0 and 2 of config.json (a, b, c), not 0 and 1 by folder order.
  assert.deepEqual(Array.from(ds.labels), [0, 0, 2, 2]);
  const b = ds.take([0, 1, 2, 3]);
  assert.deepEqual(b.feeds.pixel_values.dims, [4, 3, 16, 16]);
  const got = b.feeds.pixel_values.data as Float32Array;
  const want = ref.pixel_values.data as Float32Array;
  const per = 3 * 16 * 16;
  order.forEach((name, i) => {
    let d = 0;
    for (let k = 0; k < per; k++) d = Math.max(d, Math.abs(got[i * per + k] - want[i * per + k]));
    // PNG: exactly PIL's numbers (its fixed-point resampling is reproduced). JPEG: one 8-bit level (2/255 after
    // (x/255 − 0.5)/0.5) — jpeg-js and libjpeg round their IDCTs differently (measured: 1 level at most).
    const tol = name.endsWith('.png') ? 1e-6 : 2 / 255 + 1e-6;
    assert.ok(d <= tol, `${name}: max |Δ| ${d}`);
  });
});

test('an HF ViT on an image folder of PNGs scores exactly as on the same images from IDX', async () => {
  // 60 Fashion-MNIST test images written as grayscale PNGs into class folders 0..9.
  const idx = zlib.gunzipSync(fs.readFileSync(path.join(EXAMPLES, 'data', 'fmnist-test-2k-images-idx3-ubyte.gz')));
  const lab = zlib.gunzipSync(fs.readFileSync(path.join(EXAMPLES, 'data', 'fmnist-test-2k-labels-idx1-ubyte.gz')));
  const root = path.join(tempDir(), 'fmnist');
  const n = 60;
  for (let i = 0; i < n; i++) {
    const png = new PNG({ width: 28, height: 28, colorType: 0, inputColorType: 0, inputHasAlpha: false });
    const dir = path.join(root, String(lab[8 + i]));
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, `${String(i).padStart(3, '0')}.png`),
      PNG.sync.write(Object.assign(png, { data: Buffer.from(idx.subarray(16 + i * 784, 16 + (i + 1) * 784)) }), {
        colorType: 0,
        inputColorType: 0,
        inputHasAlpha: false,
      }),
    );
  }
  const folder = await engine.evaluate({ model: hfDir('vit-fmnist-s11'), data: root }); // preprocessing from the model folder
  const viaIdx = await engine.evaluate({ model: hfDir('vit-fmnist-s11'), data: { path: path.join(EXAMPLES, 'data', 'fmnist-test-2k.json'), limit: n } });
  assert.equal(folder.samples, n);
  assert.equal(folder.accuracy, viaIdx.accuracy);
  assert.ok(Math.abs(folder.loss - viaIdx.loss) < 1e-5, `${folder.loss} vs ${viaIdx.loss}`);
  assert.ok(folder.accuracy > 0.6, String(folder.accuracy));
});

test('image folder problems are named', () => {
  const root = tempDir();
  assert.throws(
    () => openDataset({ path: root, preprocessor: hfDir('vit-fmnist-s11') } as never),
    (e: unknown) => e instanceof OtfuseError && /one sub-folder per class/.test(e.message),
  );
  fs.mkdirSync(path.join(root, 'x'));
  fs.writeFileSync(path.join(root, 'x', 'broken.png'), 'not a png');
  assert.throws(
    () => openDataset({ path: root } as never),
    (e: unknown) => e instanceof OtfuseError && /needs its preprocessing/.test(e.message),
  );
  const ds = openDataset({ path: root, preprocessor: hfDir('vit-fmnist-s11') } as never);
  assert.throws(
    () => ds.take([0]),
    (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_DATA' && e.message.includes('broken.png'),
  );
});
