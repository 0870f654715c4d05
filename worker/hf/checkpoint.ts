// A Hugging Face model folder on disk: config.json + model.safetensors (or shards listed in
// model.safetensors.index.json). Also answers "is this path an HF checkpoint?" for the model resolver.
import path from 'node:path';
import { OtfuseError } from '../errors';
import { excerpt, exists, modelFolderRoot, pathKind, READ_LIMITS, readJsonObject } from '../io/read';
import { parseConfig, readConfigJson, type HfConfig } from './config';
import { readSafetensorsFile, type StEntry, type StFile } from './safetensors';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export interface HfCheckpoint {
  dir: string;
  rawConfig: Record<string, unknown>;
  config: HfConfig;
  /** Every tensor by key, with the file it came from. */
  tensors: Map<string, StEntry & { file: string }>;
  /** The files in order (one, or the shards in index order), each with its keys in file order and metadata. */
  files: StFile[];
  /** The index JSON when sharded (its metadata is kept on export). */
  index?: { metadata?: Record<string, unknown>; weight_map: Record<string, string> };
}

/** The model folder a path names: the folder itself, or the folder of its model.safetensors / index file. */
export function hfFolderOf(p: string): string | undefined {
  const kind = pathKind(p);
  if (kind === 'missing') return undefined;
  const dir = kind === 'dir' ? p : /\.safetensors$|\.safetensors\.index\.json$/.test(p) ? path.dirname(p) : undefined;
  if (!dir || !exists(path.join(dir, 'config.json'))) return undefined;
  return exists(path.join(dir, SINGLE_FILE)) || exists(path.join(dir, INDEX_FILE)) || kind === 'dir' ? path.resolve(dir) : undefined;
}

export function readCheckpoint(dirArg: string): HfCheckpoint {
  const dir = path.resolve(dirArg);
  const rawConfig = readConfigJson(dir);
  // Every file read must resolve inside the folder (or its Hugging Face cache repository): no link out of it.
  const root = modelFolderRoot(dir);
  const config = parseConfig(rawConfig, path.join(dir, 'config.json'));
  const tensors = new Map<string, StEntry & { file: string }>();
  const files: StFile[] = [];
  let index: HfCheckpoint['index'];
  const indexPath = path.join(dir, INDEX_FILE);
  if (exists(path.join(dir, SINGLE_FILE))) {
    files.push(readSafetensorsFile(path.join(dir, SINGLE_FILE), root));
  } else if (exists(indexPath)) {
    index = readIndex(indexPath, root);
    const shards = [...new Set(Object.values(index.weight_map))];
    for (const shard of shards) {
      const target = path.resolve(dir, shard);
      if (path.dirname(target) !== dir) throw new OtfuseError('BAD_MODEL', `shard '${excerpt(shard)}' is not a file in the model folder`, { file: indexPath });
      const st = readSafetensorsFile(target, root);
      const listed = new Set(
        Object.entries(index.weight_map)
          .filter(([, f]) => f === shard)
          .map(([k]) => k),
      );
      for (const e of st.entries) {
        if (!listed.has(e.key))
          throw new OtfuseError('BAD_MODEL', `tensor '${excerpt(e.key, 120)}' is in ${excerpt(shard)} but the index maps it elsewhere`, { file: indexPath });
        listed.delete(e.key);
      }
      if (listed.size)
        throw new OtfuseError('BAD_MODEL', `the index maps '${excerpt([...listed][0], 120)}' to ${excerpt(shard)}, which does not contain it`, {
          file: indexPath,
        });
      files.push(st);
    }
  } else {
    const other = ['pytorch_model.bin', 'tf_model.h5', 'flax_model.msgpack'].find((f) => exists(path.join(dir, f)));
    throw new OtfuseError(
      'BAD_MODEL',
      other
        ? `the weights are in ${other}; otfuse reads safetensors only (convert with save_pretrained(..., safe_serialization=True))`
        : `no ${SINGLE_FILE} or ${INDEX_FILE} in the model folder`,
      { file: dir },
    );
  }
  for (const st of files) {
    for (const e of st.entries) {
      if (tensors.has(e.key)) throw new OtfuseError('BAD_MODEL', `tensor '${excerpt(e.key, 120)}' appears in two files`, { file: st.file });
      tensors.set(e.key, { ...e, file: st.file });
    }
  }
  return { dir, rawConfig, config, tensors, files, index };
}

function readIndex(file: string, root: string): NonNullable<HfCheckpoint['index']> {
  const parsed = readJsonObject(file, { code: 'BAD_MODEL', what: 'the shard index', maxBytes: READ_LIMITS.json, within: root });
  const wm = parsed.weight_map;
  if (!wm || typeof wm !== 'object' || Array.isArray(wm) || Object.values(wm).some((v) => typeof v !== 'string')) {
    throw new OtfuseError('BAD_MODEL', "field 'weight_map' must map tensor names to shard file names", { file });
  }
  return parsed as NonNullable<HfCheckpoint['index']>;
}
