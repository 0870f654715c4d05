// Fresh parameters for an existing architecture (training from scratch): the usual transformer scheme
// (truncated normal σ = 0.02 for weights and embeddings, zero biases, LayerNorm scale 1 / shift 0).
import { OnnxModel } from '../onnx/model';
import { seededRandom } from '../random';
import { trainableParameters } from './graphs';

export { seededRandom };

/** Returns a copy of the model with every trainable parameter re-drawn. */
export function reinitializeParameters(model: OnnxModel, seed = 0, std = 0.02): OnnxModel {
  const out = model.clone();
  const rand = seededRandom(seed * 7919 + 17);
  const normal = () => {
    // Box–Muller, redrawn outside ±2σ (truncated normal).
    for (;;) {
      const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
      if (Math.abs(z) <= 2) return z;
    }
  };
  const role = new Map<string, 'scale' | 'shift'>();
  for (const n of out.nodes) {
    if (n.opType !== 'LayerNormalization') continue;
    const ins = n.input ?? [];
    if (ins[1]) role.set(ins[1], 'scale');
    if (ins[2]) role.set(ins[2], 'shift');
  }
  for (const name of trainableParameters(out)) {
    const init = out.getInitializer(name);
    const data = new Float32Array(init.data.length);
    const r = role.get(name);
    const isVector = init.dims.filter((d) => d > 1).length <= 1 && !/token|embedding/i.test(name);
    if (r === 'scale') data.fill(1);
    else if (r === 'shift' || isVector) data.fill(0);
    else for (let i = 0; i < data.length; i++) data[i] = normal() * std;
    out.setInitializer(name, data);
  }
  return out;
}
