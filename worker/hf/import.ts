// Hugging Face folder → ONNX model (in memory). The initializers carry the checkpoint's key names, so the
// export maps them back by name — also on a fused model, whose graph and names are the anchor's.
import path from 'node:path';
import { OtfuseError } from '../errors';
import type { OnnxModel } from '../onnx/model';
import { buildBert } from './build-bert';
import { buildGpt2, buildLlama } from './build-decoder';
import { buildVit } from './build-vit';
import { hfFolderOf, readCheckpoint, type HfCheckpoint } from './checkpoint';
import { HfGraph } from './graph';

export const META = { source: 'otfuse.hf.source', architecture: 'otfuse.hf.architecture', dtypes: 'otfuse.hf.dtypes' } as const;

export function buildFromCheckpoint(ckpt: HfCheckpoint, options: { dry?: boolean } = {}): OnnxModel {
  const g = new HfGraph(ckpt, options.dry);
  const c = ckpt.config;
  if (c.family === 'vit') buildVit(g, c);
  else if (c.family === 'bert') buildBert(g, c);
  else if (c.family === 'gpt2') buildGpt2(g, c);
  else buildLlama(g, c);
  const dtypes = [...new Set([...ckpt.tensors.values()].filter((e) => g.used.has(e.key)).map((e) => e.dtype))];
  return g.model(path.basename(ckpt.dir), {
    [META.source]: path.basename(ckpt.dir), // the folder's name only: metadata travels with shared models
    [META.architecture]: c.architecture,
    [META.dtypes]: dtypes.join(','),
  });
}

/** Imports the HF model folder `p` names (the folder, its model.safetensors, or its shard index). */
export function importHf(p: string): OnnxModel {
  const dir = hfFolderOf(p);
  if (!dir) throw new OtfuseError('BAD_MODEL', 'not a Hugging Face model folder (config.json + model.safetensors)', { file: p });
  return buildFromCheckpoint(readCheckpoint(dir));
}
