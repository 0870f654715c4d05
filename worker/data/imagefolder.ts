// Image datasets from the workspace: a folder with one sub-folder of PNG/JPEG files per class (torchvision's
// ImageFolder layout), preprocessed as a model folder's preprocessor_config.json says (ViTImageProcessor: resize,
// rescale, normalize) and decoded by pngjs / jpeg-js. Images are decoded batch by batch, never all at once.
import path from 'node:path';
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import { OtfuseError } from '../errors';
import { excerpt, exists, isDirectory, listFolder, modelFolderRoot, pathKind, READ_LIMITS, readBytes, readJsonObject, requireInside } from '../io/read';
import { registerDatasetFormat, type Dataset, type DatasetSpec } from './dataset';

export interface ImageFolderSpec extends DatasetSpec {
  /** A model folder with preprocessor_config.json (and config.json for label names / channels), or the file itself. */
  preprocessor?: string;
}

const IMAGE = /\.(png|jpe?g)$/i;

interface Preprocessing {
  height?: number;
  width?: number;
  /** PIL resample filter id (2 bilinear is implemented; others are refused). */
  scale: number;
  mean: number[];
  std: number[];
  channels: number;
  label2id?: Record<string, number>;
}

function readJson(file: string): Record<string, unknown> {
  return readJsonObject(file, { code: 'BAD_DATA', what: path.basename(file), maxBytes: READ_LIMITS.json, within: modelFolderRoot(path.dirname(file)) });
}

function preprocessing(spec: ImageFolderSpec): Preprocessing {
  let pre: Record<string, unknown> = {};
  let config: Record<string, unknown> = {};
  let file = '';
  if (spec.preprocessor) {
    const where = path.resolve(path.dirname(spec.path), spec.preprocessor);
    file = isDirectory(where) ? path.join(where, 'preprocessor_config.json') : where;
    pre = readJson(file);
    const cfg = path.join(path.dirname(file), 'config.json');
    if (exists(cfg)) config = readJson(cfg);
  } else if (spec.mean === undefined || spec.std === undefined) {
    throw new OtfuseError(
      'BAD_DATA',
      'an image folder needs its preprocessing: --preprocessor MODEL_DIR (preprocessor_config.json), --mean/--std, or a Hugging Face model folder among the models',
      { file: spec.path },
    );
  }
  const field = (name: string) =>
    new OtfuseError('UNSUPPORTED', `field '${name}' of preprocessor_config.json: ${excerpt(pre[name])} is not supported`, { file });
  let height: number | undefined;
  let width: number | undefined;
  if (pre.do_resize !== false && pre.size !== undefined) {
    const size = pre.size as Record<string, unknown> | number;
    if (typeof size === 'number') {
      height = size;
      width = size;
    } else if (typeof size?.height === 'number' && typeof size?.width === 'number') {
      height = size.height;
      width = size.width;
    } else throw field('size');
    const resample = pre.resample ?? 2;
    if (resample !== 2) throw field('resample');
  }
  for (const f of ['do_center_crop', 'do_pad']) if (pre[f] === true) throw field(f);
  const rescale = pre.do_rescale === false ? 1 : typeof pre.rescale_factor === 'number' ? pre.rescale_factor : 1 / 255;
  const normalize = pre.do_normalize !== false && Array.isArray(pre.image_mean);
  const channels = typeof config.num_channels === 'number' ? config.num_channels : (spec.mean?.length ?? (normalize ? (pre.image_mean as number[]).length : 3));
  const perChannel = (v: number[] | undefined, fallback: number) => Array.from({ length: channels }, (_, c) => v?.[Math.min(c, v.length - 1)] ?? fallback);
  const out = {
    height,
    width,
    scale: spec.scale !== undefined ? 1 / spec.scale : rescale,
    mean: perChannel(spec.mean ?? (normalize ? (pre.image_mean as number[]) : undefined), 0),
    std: perChannel(spec.std ?? (normalize ? (pre.image_std as number[]) : undefined), 1),
    channels,
    label2id: config.label2id && typeof config.label2id === 'object' ? (config.label2id as Record<string, number>) : undefined,
  };
  checkPreprocessing(out, file || spec.path);
  return out;
}

/** Every preprocessing number in its range (README: "Limits on what otfuse reads"), naming the field. */
function checkPreprocessing(p: Preprocessing, file: string): void {
  const bad = (field: string, why: string) => new OtfuseError('BAD_DATA', `field '${field}': ${why}`, { file });
  for (const v of [p.height, p.width])
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 1 && v <= 8192)) throw bad('size', `must be whole pixels from 1 to 8192, got ${excerpt(v)}`);
  if (!(Number.isSafeInteger(p.channels) && p.channels >= 1 && p.channels <= 64))
    throw bad('num_channels', `must be an integer from 1 to 64, got ${excerpt(p.channels)}`);
  if (!(typeof p.scale === 'number' && Number.isFinite(p.scale) && p.scale > 0)) throw bad('rescale_factor', `must be a finite positive number`);
  if (!p.mean.every((m) => typeof m === 'number' && Number.isFinite(m))) throw bad('image_mean', 'must be finite numbers');
  if (!p.std.every((d) => typeof d === 'number' && Number.isFinite(d) && d > 0)) throw bad('image_std', 'must be finite positive numbers');
}

export function openImageFolder(spec: ImageFolderSpec): Dataset {
  const root = spec.path;
  // Class folders and images must lie inside the image folder (real paths): a link out of it is refused, never read.
  const classes = listFolder(root, 'BAD_DATA', 'image folder')
    .filter((e) => e.kind === 'dir' && !e.name.startsWith('.'))
    .map((e) => e.name);
  for (const c of classes) requireInside(root, path.join(root, c), 'BAD_DATA', 'class folder');
  if (classes.length === 0) throw new OtfuseError('BAD_DATA', 'an image folder needs one sub-folder per class (ImageFolder layout)', { file: root });
  const pre = preprocessing(spec);
  // Class indices: the model's label2id when it names every folder, else sorted folder order (as torchvision does).
  const byName = pre.label2id && classes.every((c) => Object.hasOwn(pre.label2id!, c) && typeof pre.label2id![c] === 'number') ? pre.label2id : undefined;
  const files: string[] = [];
  const labels: number[] = [];
  classes.forEach((c, i) => {
    for (const f of listFolder(path.join(root, c), 'BAD_DATA', 'class folder')
      .filter((e) => IMAGE.test(e.name))
      .map((e) => e.name)) {
      // Checked while listing (not at the first batch): a FIFO, device or link out of the folder is refused by name.
      requireInside(root, path.join(root, c, f), 'BAD_DATA', 'image');
      if (pathKind(path.join(root, c, f)) !== 'file') throw new OtfuseError('BAD_DATA', 'the image is not a regular file', { file: path.join(root, c, f) });
      files.push(path.join(root, c, f));
      labels.push(byName ? byName[c] : i);
    }
  });
  if (files.length === 0) throw new OtfuseError('BAD_DATA', 'no .png/.jpg/.jpeg files in the class folders', { file: root });
  let { height, width } = pre;
  if (height === undefined || width === undefined) {
    const first = decode(files[0]);
    height = first.height;
    width = first.width;
  }
  const H = height;
  const W = width;
  const C = pre.channels;
  return {
    source: root,
    size: files.length,
    arrays: [{ name: 'pixel_values', type: 'float32', sampleShape: [C, H, W] }],
    labels: Int32Array.from(labels),
    close() {},
    take(indices) {
      const out = new Float32Array(indices.length * C * H * W);
      for (let b = 0; b < indices.length; b++) {
        const file = files[indices[b]];
        let img = decode(file);
        if (img.width !== W || img.height !== H) {
          if (pre.height === undefined)
            throw new OtfuseError('BAD_DATA', `image is ${img.width}×${img.height}, the first image ${W}×${H}, and no resize is configured`, { file });
          img = resizeBilinear(img, W, H);
        }
        const plane = H * W;
        for (let c = 0; c < C; c++) {
          for (let p = 0; p < plane; p++) {
            const px = img.data[p * 4 + (C === 1 ? 0 : c)]; // C === 1: decode() stored the luminance in R
            out[b * C * plane + c * plane + p] = (px * pre.scale - pre.mean[c]) / pre.std[c];
          }
        }
      }
      return {
        feeds: { pixel_values: { type: 'float32', data: out, dims: [indices.length, C, H, W] } },
        labels: Int32Array.from(indices, (i) => labels[i]),
        indices: Int32Array.from(indices),
      };
    },
  };

  function decode(file: string): Rgba {
    const img = decodeImage(file, root);
    if (C === 1) {
      // PIL's convert('L'): L = R·299/1000 + G·587/1000 + B·114/1000, rounded.
      for (let p = 0; p < img.width * img.height; p++) {
        const d = img.data;
        d[p * 4] = Math.round((d[p * 4] * 299 + d[p * 4 + 1] * 587 + d[p * 4 + 2] * 114) / 1000);
      }
    }
    return img;
  }
}

interface Rgba {
  width: number;
  height: number;
  data: Uint8Array;
}

export function decodeImage(file: string, within?: string): Rgba {
  const bytes = Buffer.from(readBytes(file, { code: 'BAD_DATA', what: 'image', maxBytes: READ_LIMITS.image, within }).buffer);
  try {
    if (/\.png$/i.test(file)) {
      // The declared size (IHDR) is checked before pngjs allocates width × height × 4 bytes.
      if (bytes.length >= 24 && bytes.readUInt32BE(16) * bytes.readUInt32BE(20) > READ_LIMITS.imagePixels)
        throw new OtfuseError(
          'BAD_DATA',
          `image declares ${bytes.readUInt32BE(16)}×${bytes.readUInt32BE(20)} pixels, more than the ${READ_LIMITS.imagePixels} accepted`,
          {
            file,
          },
        );
      const png = PNG.sync.read(bytes);
      return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
    }
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024, maxResolutionInMP: READ_LIMITS.imagePixels / 2 ** 20 });
    return { width: img.width, height: img.height, data: img.data };
  } catch (err) {
    if (err instanceof OtfuseError) throw err;
    throw new OtfuseError('BAD_DATA', `cannot decode image: ${excerpt((err as Error).message, 120)}`, { file });
  }
}

/** PIL's Image.resize(BILINEAR): a triangle filter widened by the scale (antialiasing when shrinking),
 * horizontal pass then vertical pass, in Pillow's fixed-point arithmetic (8 bits between the passes). */
export function resizeBilinear(img: Rgba, outW: number, outH: number): Rgba {
  const horiz = resample1d(img.data, img.width, img.height, outW, true);
  const vert = resample1d(horiz, outW, img.height, outH, false);
  return { width: outW, height: outH, data: vert };
}

const FIXED = 2 ** 22;

function coefficients(inSize: number, outSize: number): { start: number[]; weights: number[][] } {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // bilinear support 1.0, widened by the scale
  const start: number[] = [];
  const weights: number[][] = [];
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5));
    const w: number[] = [];
    let sum = 0;
    for (let x = xmin; x < xmax; x++) {
      const t = Math.abs((x - center + 0.5) / filterScale);
      const v = t < 1 ? 1 - t : 0;
      w.push(v);
      sum += v;
    }
    start.push(xmin);
    // Pillow's 8-bit path: coefficients in 22-bit fixed point, rounded half up.
    weights.push(w.map((v) => Math.trunc(0.5 + (sum ? v / sum : 0) * FIXED)));
  }
  return { start, weights };
}

function resample1d(src: Uint8Array, w: number, h: number, out: number, horizontal: boolean): Uint8Array {
  const inSize = horizontal ? w : h;
  if (inSize === out) return src;
  const { start, weights } = coefficients(inSize, out);
  const ow = horizontal ? out : w;
  const oh = horizontal ? h : out;
  const dst = new Uint8Array(ow * oh * 4);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const o = horizontal ? x : y;
      const k = weights[o];
      for (let c = 0; c < 4; c++) {
        let acc = FIXED / 2;
        for (let i = 0; i < k.length; i++) {
          const s = start[o] + i;
          acc += k[i] * src[(horizontal ? y * w + s : s * w + x) * 4 + c];
        }
        dst[(y * ow + x) * 4 + c] = Math.min(255, Math.max(0, Math.floor(acc / FIXED)));
      }
    }
  }
  return dst;
}

registerDatasetFormat({
  accepts: (spec) => !spec.path.endsWith('.json') && isDirectory(spec.path),
  open: (spec) => openImageFolder(spec as ImageFolderSpec),
});
