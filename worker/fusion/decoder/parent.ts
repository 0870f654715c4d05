// A decoder LM parent as fusion holds it: its checkpoint (config, key layout) and every tensor as float32; and the
// way back to an ONNX model (through the HF importer, so the graph is the one eval and export know).
import os from 'node:os';
import path from 'node:path';
import { OtfuseError } from '../../errors';
import type { DecoderConfig } from '../../hf/config-decoder';
import { readCheckpoint, type HfCheckpoint } from '../../hf/checkpoint';
import { parseConfig, readConfigJson } from '../../hf/config';
import { buildFromCheckpoint } from '../../hf/import';
import { toFloat32, type StEntry } from '../../hf/safetensors';
import { DataType, dimsOf, tensorToFloat32, type OnnxModel } from '../../onnx/model';
import { decoderRules } from './symmetry';

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
  for (const [key, e] of ckpt.tensors) tensors.set(key, { shape: e.shape, data: f32View(e.bytes, e.dtype === 'F32') ?? toFloat32(e, e.file) });
  return { dir, ckpt, config: c, tensors };
}

/** Little-endian float32 bytes as a Float32Array without a copy, where the platform and alignment allow. */
function f32View(bytes: Uint8Array | null | undefined, isF32: boolean): Float32Array | undefined {
  if (!isF32 || !bytes || bytes.byteOffset % 4 !== 0 || os.endianness() !== 'LE') return undefined;
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/**
 * The parent an imported model already holds (the fusion job has loaded both folders through the HF importer, whose
 * initializers are named by checkpoint key and hold the checkpoint's values as float32): its tensors are views of
 * those initializers, so the weights are held once, not read from the folder again.
 */
export function decoderFromModel(dirArg: string, model: OnnxModel): DecoderParent {
  const dir = path.resolve(dirArg);
  const rawConfig = readConfigJson(dir);
  const config = parseConfig(rawConfig, path.join(dir, 'config.json'));
  if (config.family !== 'gpt2' && config.family !== 'llama')
    throw new OtfuseError('UNSUPPORTED', `not a decoder language model (${config.architecture}); decoder fusion takes GPT-2 / Llama-family folders`, {
      file: dir,
    });
  const byName = new Map((model.graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const entries = new Map<string, StEntry & { file: string }>();
  for (const { key } of decoderRules(config).flat()) {
    const t = byName.get(key);
    if (!t) throw new OtfuseError('BAD_MODEL', `the imported model has no tensor '${key}'`, { file: dir });
    const shape = dimsOf(t);
    const data = f32View(t.rawData, t.dataType === DataType.FLOAT) ?? tensorToFloat32(t, dir);
    tensors.set(key, { shape, data });
    entries.set(key, { key, dtype: 'F32', shape, bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), file: dir });
  }
  return { dir, ckpt: { dir, rawConfig, config, tensors: entries, files: [] }, config, tensors };
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
