// Helpers for the Hugging Face tests: fixture folders, reference inputs/logits, running a model on named feeds.
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { readNpz, type NpyArray } from '../../worker/data/npy';
import type { OnnxModel } from '../../worker/onnx/model';
import { ROOT } from '../helpers';

export const HF = path.join(ROOT, 'test', 'fixtures', 'hf');
export const hfDir = (name: string) => path.join(HF, name);

export interface Reference {
  feeds: Record<string, NpyArray>;
  logits: NpyArray;
}

export function reference(name: string): Reference {
  const arrays = readNpz(path.join(HF, 'reference', `${name}.npz`));
  const { logits, ...feeds } = arrays;
  return { feeds, logits };
}

export async function runFeeds(model: OnnxModel, feeds: Record<string, NpyArray>): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model.toBytes(), { intraOpNumThreads: 1 });
  try {
    const inputs: Record<string, ort.Tensor> = {};
    for (const [name, a] of Object.entries(feeds)) {
      inputs[name] =
        a.dtype === 'i8'
          ? new ort.Tensor('int64', a.data as BigInt64Array, a.shape)
          : new ort.Tensor('float32', Float32Array.from(a.data as Float32Array), a.shape);
    }
    const out = await session.run(inputs);
    return out[session.outputNames[0]].data as Float32Array;
  } finally {
    await session.release();
  }
}
