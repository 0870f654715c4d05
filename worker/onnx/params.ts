// Memory-frugal access to model weights during fusion (issue 16): float32 views straight into the loaded
// protobuf's bytes where the platform allows it (little-endian FLOAT, 4-byte aligned), a small LRU of converted
// copies and of weights read back from the model file (loadModel's lazyWeights) otherwise, and clones that share
// the graph instead of re-encoding the whole model.
import { onnx } from 'onnx-proto';
import { copyTensor, isDeferred, OnnxModel } from './model';

/** Read access to a model's parameters by initializer name (float32 values and dims). */
export interface Params {
  get(name: string): { dims: number[]; data: Float32Array };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Read-only parameter access. Aligned float32 raw data is viewed without a copy; anything else is converted, or
 * read back from the file, and kept in an LRU of `cacheEntries` tensors (alignment and refit walk the model block
 * by block: one block's six large tensors cover the re-reads; ViT-B: ≤ 57 MB per model instead of 343 MB).
 */
export function paramView(model: OnnxModel, cacheEntries = 6): Params {
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
      // Deferred bytes (loadModel's lazyWeights) are read from the file on each access: cache what was read.
      const deferred = !!t && isDeferred(t);
      const raw = t?.rawData;
      let v: { dims: number[]; data: Float32Array } | undefined;
      if (t && raw && LITTLE_ENDIAN && t.dataType === onnx.TensorProto.DataType.FLOAT && raw.byteOffset % 4 === 0 && raw.length > 0) {
        const dims = (t.dims ?? []).map(Number);
        if (raw.length === 4 * dims.reduce((a, b) => a * b, 1)) v = { dims, data: new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4) };
        if (v && !deferred) return v;
      }
      if (!v) {
        const i = model.getInitializer(name);
        v = { dims: i.dims, data: i.data };
      }
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
    initializer: (g.initializer ?? []).map(copyTensor),
  });
  return new OnnxModel(onnx.ModelProto.create({ ...model.proto, graph }), model.file);
}
