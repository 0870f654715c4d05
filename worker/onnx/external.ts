// Writing ONNX models with external data: a protobuf message cannot exceed 2 GB, so large models keep their
// initializers in a side file next to the model (ONNX's external-data convention: `location` relative to the
// model's folder, `offset`, `length`). Tensors are streamed into the side file one by one (bounded memory); both
// files are written under temporary names and renamed into place, the data file first.
import fs from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { tempPathFor } from './atomic';
import { rawByteLength, withoutRawData, type OnnxModel } from './model';

/** Protobuf's hard limit, less a margin for the graph itself. */
export const INLINE_LIMIT_BYTES = 2 ** 31 - 64 * 2 ** 20;

export interface ExternalSaveOptions {
  /** Initializers at least this large go to the side file (default 1 KiB, as onnx.save_model's default). */
  minBytes?: number;
  /** Side file name, relative to the model's folder (default `<model file name>.data`). */
  location?: string;
}

/** Bytes of initializer data stored inline (what decides whether a model fits in one protobuf). */
export function inlineDataBytes(model: OnnxModel): number {
  let total = 0;
  for (const t of model.graph.initializer ?? []) total += rawByteLength(t); // deferred bytes are not read for this
  return total;
}

/**
 * Saves `model` at `target` with its initializers in `<target>.data`. The model object is not changed. Returns the
 * side file's path.
 */
export function saveWithExternalData(model: OnnxModel, target: string, options: ExternalSaveOptions = {}): string {
  const minBytes = options.minBytes ?? 1024;
  const location = options.location ?? `${path.basename(target)}.data`;
  if (path.isAbsolute(location) || location.includes('..')) throw new Error(`external data location '${location}' must be a plain file name`);
  const dataPath = path.join(path.dirname(target), location);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmpData = tempPathFor(dataPath),
    tmpModel = tempPathFor(target);
  const g = model.graph;
  try {
    const fd = fs.openSync(tmpData, 'w');
    let offset = 0;
    const initializer: onnx.ITensorProto[] = [];
    try {
      for (const t of g.initializer ?? []) {
        const raw = t.rawData;
        if (!raw || raw.length < minBytes) {
          initializer.push(t);
          continue;
        }
        // 64-byte alignment of each tensor, so readers may map it directly.
        const pad = (64 - (offset % 64)) % 64;
        if (pad) {
          fs.writeSync(fd, new Uint8Array(pad));
          offset += pad;
        }
        let written = 0;
        while (written < raw.length) written += fs.writeSync(fd, raw, written, raw.length - written);
        const copy = withoutRawData(t); // (a spread would read deferred bytes back once more)
        copy.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
        copy.externalData = [
          { key: 'location', value: location },
          { key: 'offset', value: String(offset) },
          { key: 'length', value: String(raw.length) },
        ].map((e) => onnx.StringStringEntryProto.create(e));
        initializer.push(copy);
        offset += raw.length;
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    const graph = onnx.GraphProto.create({ ...g, initializer });
    const proto = onnx.ModelProto.create({ ...model.proto, graph });
    fs.writeFileSync(tmpModel, onnx.ModelProto.encode(proto).finish());
    fs.renameSync(tmpData, dataPath);
    fs.renameSync(tmpModel, target);
  } catch (err) {
    fs.rmSync(tmpData, { force: true });
    fs.rmSync(tmpModel, { force: true });
    throw err;
  }
  return dataPath;
}

/** Saves inline when the weights fit in one protobuf, else with external data. Returns the files written. */
export function saveModelAuto(model: OnnxModel, target: string): string[] {
  if (inlineDataBytes(model) < INLINE_LIMIT_BYTES) {
    model.save(target);
    return [target];
  }
  return [target, saveWithExternalData(model, target)];
}
