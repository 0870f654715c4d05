// A decoder LM parent as fusion holds it: its checkpoint (config, key layout) and every tensor as float32; and the
// way back to an ONNX model (through the HF importer, so the graph is the one eval and export know).
import { OtfuseError } from '../../errors';
import type { DecoderConfig } from '../../hf/config-decoder';
import { readCheckpoint, type HfCheckpoint } from '../../hf/checkpoint';
import { buildFromCheckpoint } from '../../hf/import';
import { toFloat32 } from '../../hf/safetensors';
import type { OnnxModel } from '../../onnx/model';

export interface DecoderParent {
  dir: string;
  ckpt: HfCheckpoint;
  config: DecoderConfig;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

export function readDecoder(dir: string): DecoderParent {
  const ckpt = readCheckpoint(dir);
  const c = ckpt.config;
  if (c.family !== 'gpt2' && c.family !== 'llama')
    throw new OtfuseError('UNSUPPORTED', `not a decoder language model (${c.architecture}); decoder fusion takes GPT-2 / Llama-family folders`, { file: dir });
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [key, e] of ckpt.tensors) tensors.set(key, { shape: e.shape, data: toFloat32(e, e.file) });
  return { dir, ckpt, config: c, tensors };
}

/** A checkpoint like `a` holding `tensors` (float32), built into an ONNX model by the HF importer. */
export function buildDecoder(a: DecoderParent, tensors: Map<string, Float32Array>): OnnxModel {
  const entries = new Map(a.ckpt.tensors);
  for (const [key, data] of tensors) {
    const e = a.ckpt.tensors.get(key)!;
    entries.set(key, { ...e, dtype: 'F32', bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
  }
  return buildFromCheckpoint({ ...a.ckpt, tensors: entries });
}

/** The parent's own tensors as a model. */
export const parentModel = (p: DecoderParent): OnnxModel => buildDecoder(p, new Map([...p.tensors].map(([k, t]) => [k, t.data])));
