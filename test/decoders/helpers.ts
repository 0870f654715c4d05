// Decoder fixtures (test/fixtures/decoders, scripts/fixtures/make_decoders.py) and their PyTorch references.
import path from 'node:path';
import { readNpz } from '../../worker/data/npy';
import { ROOT } from '../helpers';

export const DEC = path.join(ROOT, 'test', 'fixtures', 'decoders');
export const FIXTURES = ['gpt2-s0', 'gpt2-s1', 'llama-s0', 'llama-s1', 'llama-s1-bf16-sharded', 'qwen2-s0'];

export function decReference(name: string) {
  const r = readNpz(path.join(DEC, 'reference', `${name}.npz`));
  const ids = r.input_ids;
  const [n, t] = ids.shape;
  return {
    blocks: Int32Array.from(ids.data as Int32Array),
    n,
    t,
    logits0: r.logits0.data as Float32Array,
    perplexity: Number((r.perplexity.data as Float64Array)[0]),
    accuracy: Number((r.accuracy.data as Float64Array)[0]),
  };
}
