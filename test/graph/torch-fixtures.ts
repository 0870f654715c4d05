// Test helpers for the models built from PyTorch's own modules (test/fixtures/torch, made by
// scripts/fixtures/torch_exports.py): gzip-stored ONNX files, their reference logits, and a Dataset over
// the reference inputs.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { parseModel, type OnnxModel } from '../../worker/onnx/model';
import type { Batch, Dataset } from '../../worker/data/dataset';
import { tempDir } from '../helpers';

export const TORCH = path.join(process.cwd(), 'test', 'fixtures', 'torch');
export const TINY = path.join(TORCH, 'tiny');
export const TRAINED = path.join(TORCH, 'trained');

/** Every nn.TransformerEncoder variant: enc_{post|pre}_{relu|gelu}_{bf|sf}; then torchvision ViT and timm-style. */
export const ENC_VARIANTS = ['post', 'pre'].flatMap((ln) => ['relu', 'gelu'].flatMap((act) => ['bf', 'sf'].map((lay) => `enc_${ln}_${act}_${lay}`)));
/** timm: qkv.unbind (Split); timm_index: qkv[0..2] (Gathers); timm_split: GPT-2's split of the last axis. */
export const ALL_VARIANTS = [...ENC_VARIANTS, 'tv', 'timm', 'timm_index', 'timm_split'];
export const OPSETS = [14, 17] as const;

export function fixturePath(dir: string, name: string): string {
  return path.join(dir, `${name}.onnx.gz`);
}

export function loadGz(file: string): OnnxModel {
  return parseModel(new Uint8Array(zlib.gunzipSync(fs.readFileSync(file))), file.replace(/\.gz$/, ''));
}

export function tiny(variant: string, opset: number, permuted = false): OnnxModel {
  return loadGz(fixturePath(TINY, `${variant}_tiny${permuted ? '_perm' : ''}_op${opset}`));
}

export function hasTiny(variant: string, opset: number): boolean {
  return fs.existsSync(fixturePath(TINY, `${variant}_tiny_op${opset}`));
}

export function hasPermuted(variant: string, opset: number): boolean {
  return fs.existsSync(fixturePath(TINY, `${variant}_tiny_perm_op${opset}`));
}

/** The decompressed model written to a temp folder (for the CLI). */
export function unpacked(file: string): string {
  const out = path.join(tempDir('otfuse-torch-'), path.basename(file).replace(/\.gz$/, ''));
  fs.writeFileSync(out, zlib.gunzipSync(fs.readFileSync(file)));
  return out;
}

interface Reference {
  inputs: number[];
  logits: Record<string, { logits: number[][] }>;
}
let ref: Reference | undefined;
export function tinyReference(): Reference {
  ref ??= JSON.parse(fs.readFileSync(path.join(TINY, 'tiny-reference.json'), 'utf8')) as Reference;
  return ref;
}

/** A Dataset of the 4 reference images ([4,1,28,28], torch.randn with seed 1234), labels 0. */
export function referenceInputs(): Dataset {
  const x = Float32Array.from(tinyReference().inputs);
  const n = x.length / 784;
  return {
    source: path.join(TINY, 'tiny-reference.json'),
    size: n,
    arrays: [{ name: 'pixel_values', type: 'float32', sampleShape: [1, 28, 28] }],
    labels: new Int32Array(n),
    close() {},
    take(indices: ArrayLike<number>): Batch {
      const idx = Array.from(indices);
      const data = new Float32Array(idx.length * 784);
      idx.forEach((i, k) => data.set(x.subarray(i * 784, (i + 1) * 784), k * 784));
      return {
        feeds: { pixel_values: { type: 'float32', data, dims: [idx.length, 1, 28, 28] } },
        labels: new Int32Array(idx.length),
        indices: Int32Array.from(idx),
      };
    },
  };
}
