// Memory-frugal access to model weights during fusion (issue 16): float32 views straight into the loaded
// protobuf's bytes where the platform allows it (little-endian FLOAT, 4-byte aligned), a small LRU of converted
// copies otherwise, and clones that share the graph instead of re-encoding the whole model.
import { onnx } from 'onnx-proto';
import { OnnxModel } from '../onnx/model';
import type { Params } from './align';

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Read-only parameter access. Aligned float32 raw data is viewed without a copy; anything else is converted and
 * kept in an LRU of `cacheEntries` tensors (alignment walks the model block by block, so a few blocks' worth
 * of tensors covers every re-read).
 */
export function paramView(model: OnnxModel, cacheEntries = 16): Params {
  const byName = new Map((model.graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const lru = new Map<string, { dims: number[]; data: Float32Array }>();
  return {
    get(name) {
      const hit = lru.get(name);
      if (hit) {
        lru.delete(name);
        lru.set(name, hit);
        return hit;
      }
      const t = byName.get(name);
      const raw = t?.rawData;
      if (t && raw && LITTLE_ENDIAN && t.dataType === onnx.TensorProto.DataType.FLOAT && raw.byteOffset % 4 === 0 && raw.length > 0) {
        const dims = (t.dims ?? []).map(Number);
        if (raw.length === 4 * dims.reduce((a, b) => a * b, 1)) return { dims, data: new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4) };
      }
      const i = model.getInitializer(name);
      const v = { dims: i.dims, data: i.data };
      lru.set(name, v);
      if (lru.size > cacheEntries) lru.delete(lru.keys().next().value as string);
      return v;
    },
  };
}

/**
 * A copy of the model whose initializers are new TensorProto objects (so setInitializer on the copy never touches
 * the source) while nodes, inputs and outputs are shared with the source and the weights' bytes are not copied
 * until they are replaced: cloning a 350 MB model costs kilobytes, not two copies of it.
 */
export function cloneForWeights(model: OnnxModel): OnnxModel {
  const g = model.graph;
  const graph = onnx.GraphProto.create({
    ...g,
    node: [...(g.node ?? [])],
    input: [...(g.input ?? [])],
    output: [...(g.output ?? [])],
    valueInfo: [...(g.valueInfo ?? [])],
    initializer: (g.initializer ?? []).map((t) => onnx.TensorProto.create({ ...t })),
  });
  return new OnnxModel(onnx.ModelProto.create({ ...model.proto, graph }), model.file);
}
