// ONNX model → Hugging Face folder shaped like a template folder (`--like`): model.safetensors (or the same
// shards) with exactly the template's keys, order, dtypes and metadata, shapes from the model (heterogeneous
// fusion keeps the anchor's widths), config.json with the widths updated, tokenizer/preprocessor files copied,
// and a model card. Written into a temporary folder and renamed into place.
import path from 'node:path';
import { OtfuseError } from '../errors';
import { loadModel, type OnnxModel } from '../onnx/model';
import { writeFileAtomic } from '../onnx/atomic';
import { checkOutputWritable, checkReplaceableDir, modelInputs, refuseOutputOverInputs, writeOwnedDir } from '../io/outputs';
import { INDEX_FILE, readCheckpoint, type HfCheckpoint } from './checkpoint';
import { buildFromCheckpoint } from './import';
import { BUFFER_KEYS } from './graph';
import { TIED_DECODER, TIED_DECODER_BIAS } from './build-bert';
import { mapKeys } from './keymap';
import { fromFloat32, writeSafetensorsFile, type StDtype } from './safetensors';
import { modelCard, type CardInfo } from './card';
import { HF_MODEL_TYPES } from './model-types';
import { analyzeModel } from '../graph/analyze';
import { isPartialModel } from '../fusion/partial';
import { isInside, listFolder, modelFolderRoot, readBytes, readText, READ_LIMITS } from '../io/read';
import { isDeepStrictEqual } from 'node:util';

/** Files of a model folder that travel with the weights (tokenizer, image processor). */
const COPIED =
  /^(tokenizer(_config)?\.json|vocab\.(txt|json)|merges\.txt|special_tokens_map\.json|added_tokens\.json|preprocessor_config\.json|image_processor[\w-]*\.json|sentencepiece\.bpe\.model|spiece\.model|generation_config\.json)$/;

export interface HfExportRequest {
  /** The model to write: an .onnx file (e.g. a run's fused.onnx) or an HF folder. */
  model: string;
  /** The HF folder whose layout, config and tokenizer the output takes (for a fused model: the anchor's). */
  like: string;
  output: string;
  /** Replace an existing output folder. */
  force?: boolean;
  /** Model-card facts; else `cardOf`'s (the API reads them from the model's lineage and its run's run.json). */
  card?: CardInfo;
}

/** Model-card facts for a model file from what travels with it (its metadata) and where it lies. */
export type CardSource = (model: string, metadata: Record<string, string> | undefined) => CardInfo;

export interface HfExportResult {
  output: string;
  tensors: number;
  files: string[];
  /** Config fields whose values changed (heterogeneous fusion). */
  configChanges: Record<string, [unknown, unknown]>;
  /** What was not carried over from the --like folder, and why (links out of it, non-regular files, remote code). */
  skipped: { name: string; why: string }[];
}

interface OutTensor {
  key: string;
  dtype: StDtype;
  shape: number[];
  bytes: Uint8Array;
}

/** A partial fusion (--merge-layers) holds several parents' upper blocks on one trunk: no HF class computes that. */
function refusePartial(model: OnnxModel): void {
  if (isPartialModel(model))
    throw new OtfuseError(
      'UNSUPPORTED',
      'this is a partial fusion (--merge-layers): each parent keeps its own upper blocks and head as parallel branches on a shared trunk, which no Hugging Face model class computes; use the ONNX file, or fuse all blocks to export',
      { file: model.file },
    );
}

export async function exportHf(request: HfExportRequest, cardOf?: CardSource): Promise<HfExportResult> {
  const output = path.resolve(request.output);
  // Before any work: the output folder is no input and holds none, and it is replaced only with --force and only
  // when otfuse wrote it (worker/io/outputs.ts).
  refuseOutputOverInputs([{ path: output, folder: true }], [...modelInputs(request.model), { path: request.like, what: '--like folder' }]);
  checkReplaceableDir(output, request.force, 'hf-export');
  const like = readCheckpoint(request.like);
  const model = loadModel(request.model);
  refusePartial(model);
  checkLayerCount(like, model);
  const tensors = tensorsFor(like, model);
  const { config, changes, skipped } = updatedConfig(like, tensors);
  const card = request.card ?? cardOf?.(request.model, model.summary().metadata) ?? {};
  const files = await writeOwnedDir(output, { force: request.force, kind: 'hf-export' }, async (tmp) => {
    const written: string[] = [];
    const byKey = new Map(tensors.map((t) => [t.key, t]));
    for (const st of like.files) {
      const name = path.basename(st.file);
      writeSafetensorsFile(
        path.join(tmp, name),
        st.entries.map((e) => byKey.get(e.key)!),
        st.metadata,
      );
      written.push(name);
    }
    if (like.index) {
      const total = tensors.reduce((s, t) => s + t.bytes.length, 0);
      writeFileAtomic(
        path.join(tmp, INDEX_FILE),
        JSON.stringify({ ...like.index, metadata: { ...(like.index.metadata ?? {}), total_size: total } }, null, 2) + '\n',
      );
      written.push(INDEX_FILE);
    }
    writeFileAtomic(path.join(tmp, 'config.json'), configText(like.dir, config, changes));
    written.push('config.json');
    for (const f of copyLikeFiles(like.dir, tmp, skipped)) written.push(f);
    writeFileAtomic(
      path.join(tmp, 'README.md'),
      modelCard({ ...card, like: path.basename(like.dir), model: path.basename(path.resolve(request.model)), architecture: like.config.architecture, changes }),
    );
    written.push('README.md');
    // The folder must load back as the model it came from.
    buildFromCheckpoint(readCheckpoint(tmp), { dry: true });
    return written;
  });
  return { output, tensors: tensors.length, files, configChanges: changes, skipped };
}

/** Every tensor of the template, in its dtype, with the model's values and shapes. */
function tensorsFor(like: HfCheckpoint, model: OnnxModel): OutTensor[] {
  const template = buildFromCheckpoint(like, { dry: true });
  const params = [...like.tensors.keys()].filter((k) => template.hasInitializer(k));
  const sources = mapKeys(template, model, params);
  const out = new Map<string, OutTensor>();
  for (const key of params) {
    const src = sources.get(key)!;
    const e = like.tensors.get(key)!;
    const init = model.getInitializer(src.name);
    let { dims, data } = init;
    if (src.transposed) {
      if (dims.length !== 2) throw new OtfuseError('INTERNAL', `cannot transpose '${src.name}' [${dims}]`, { file: model.file });
      const [r, c] = dims;
      const t = new Float32Array(data.length);
      for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = data[i * c + j];
      data = t;
      dims = [c, r];
    }
    if (dims.length !== e.shape.length)
      throw new OtfuseError('MISMATCH', `initializer '${src.name}' has rank ${dims.length}, checkpoint tensor '${key}' rank ${e.shape.length}`, {
        file: model.file,
      });
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i]))
        throw new OtfuseError('NUMERIC', `initializer '${src.name}' holds ${data[i]}; refusing to export it`, { file: model.file });
    }
    out.set(key, { key, dtype: e.dtype, shape: dims, bytes: fromFloat32(data, e.dtype, key) });
  }
  // Tensors that are not graph parameters: tied copies take their target's new bytes, buffers stay as they were.
  for (const [key, e] of like.tensors) {
    if (out.has(key)) continue;
    const tiedTo = key === TIED_DECODER ? 'bert.embeddings.word_embeddings.weight' : key === TIED_DECODER_BIAS ? 'cls.predictions.bias' : undefined;
    if (tiedTo && out.has(tiedTo)) {
      out.set(key, { ...out.get(tiedTo)!, key });
      continue;
    }
    if (BUFFER_KEYS.some((r) => r.test(key))) {
      out.set(key, { key, dtype: e.dtype, shape: e.shape, bytes: e.bytes });
      continue;
    }
    throw new OtfuseError('INTERNAL', `checkpoint tensor '${key}' has no source`, { file: e.file });
  }
  return [...like.tensors.keys()].map((k) => out.get(k)!);
}

/** The tokenizer / preprocessor files of the --like folder, copied into `tmp`: regular files inside the folder only
 * (a link that leaves it, e.g. tokenizer.json → ~/.ssh/id_rsa, is skipped and reported, never read). */
function copyLikeFiles(dir: string, tmp: string, skipped: { name: string; why: string }[]): string[] {
  const copied: string[] = [];
  const root = modelFolderRoot(dir);
  for (const { name, kind } of listFolder(dir, 'BAD_MODEL', '--like folder')) {
    if (!COPIED.test(name)) continue;
    const file = path.join(dir, name);
    if (kind !== 'file') {
      skipped.push({ name, why: 'not a regular file (a folder, FIFO, device, or a broken or looping link)' });
      continue;
    }
    if (!isInside(root, file)) {
      skipped.push({ name, why: 'a link to a file outside the --like folder' });
      continue;
    }
    const limit = name === 'tokenizer.json' ? READ_LIMITS.tokenizerJson : name.endsWith('.json') ? READ_LIMITS.json : READ_LIMITS.vocab;
    writeFileAtomic(path.join(tmp, name), readBytes(file, { code: 'BAD_MODEL', what: name, maxBytes: limit, within: root }));
    copied.push(name);
  }
  return copied;
}

/** A model with more or fewer encoder layers than the --like config would lose layers or leave some unset. */
function checkLayerCount(like: HfCheckpoint, model: OnnxModel): void {
  const layers = new Set<number>();
  for (const name of model.initializerNames()) {
    const m = /(?:^|[./])(?:encoder\.)?layers?[._](\d+)[._]/.exec(name);
    if (m) layers.add(Number(m[1]));
  }
  let count = layers.size ? Math.max(...layers) + 1 : undefined;
  if (count === undefined) {
    try {
      count = analyzeModel(model).blocks.length;
    } catch {
      return; // mapKeys reports a structure it cannot pair
    }
  }
  if (count !== like.config.layers)
    throw new OtfuseError(
      'MISMATCH',
      `the model has ${count} encoder layers but the --like folder's config.json has num_hidden_layers ${like.config.layers}; export it --like a folder with the same depth`,
      { file: model.file },
    );
}

/** config.json fields never carried into an export: remote code a `trust_remote_code` load would run. */
const DROPPED_CONFIG_FIELDS = ['auto_map'];

/** config.json with the widths the new tensors imply (hidden_size, intermediate_size), remote-code fields dropped. */
function updatedConfig(
  like: HfCheckpoint,
  tensors: OutTensor[],
): { config: Record<string, unknown>; changes: Record<string, [unknown, unknown]>; skipped: { name: string; why: string }[] } {
  const shape = (k: string) => tensors.find((t) => t.key === k)?.shape;
  const widths = HF_MODEL_TYPES['modelType' in like.config ? like.config.modelType : like.config.family].widths ?? {};
  const config = { ...like.rawConfig };
  const changes: Record<string, [unknown, unknown]> = {};
  const skipped: { name: string; why: string }[] = [];
  for (const field of DROPPED_CONFIG_FIELDS) {
    if (!Object.hasOwn(config, field)) continue;
    delete config[field];
    skipped.push({ name: `config.json field '${field}'`, why: 'remote code (trust_remote_code) is not carried into exports' });
  }
  const set = (field: string, value: number | undefined) => {
    if (value === undefined || config[field] === value) return;
    changes[field] = [config[field], value];
    config[field] = value;
  };
  for (const [field, key] of Object.entries(widths) as [string, string][]) set(field, shape(key)?.[0]);
  return { config, changes, skipped };
}

/** config.json as written: the template's own text with only the changed numbers replaced, so number forms
 * (`0.0`), key order and spacing stay as they were; re-serialised only when that edit would not give `config`. */
function configText(likeDir: string, config: Record<string, unknown>, changes: Record<string, [unknown, unknown]>): string {
  const fallback = JSON.stringify(config, null, 2) + '\n';
  let text: string;
  try {
    text = readText(path.join(likeDir, 'config.json'), {
      code: 'BAD_MODEL',
      what: 'config.json',
      maxBytes: READ_LIMITS.json,
      within: modelFolderRoot(likeDir),
    });
  } catch {
    return fallback;
  }
  for (const [key, [, value]] of Object.entries(changes)) {
    const at = new RegExp(`("${key.replace(/[^\w]/g, '')}"\\s*:\\s*)-?\\d[\\d.eE+-]*`, 'g');
    if ((text.match(at) ?? []).length !== 1) return fallback;
    text = text.replace(at, (_m, head: string) => `${head}${String(value)}`);
  }
  try {
    return isDeepStrictEqual(JSON.parse(text), config) ? text : fallback;
  } catch {
    return fallback;
  }
}

export interface HfImportRequest {
  /** The HF folder (or its model.safetensors / shard index). */
  model: string;
  output: string;
}

export interface HfImportResult {
  output: string;
  architecture: string;
  parameters: number;
  dtypes: string;
}

export async function importHfToFile(request: HfImportRequest): Promise<HfImportResult> {
  const output = path.resolve(request.output);
  // Before any work: the output is not the folder read nor inside it, and it can be written.
  refuseOutputOverInputs([{ path: output }, { path: `${output}.data` }], modelInputs(request.model, 'Hugging Face model'));
  checkOutputWritable(output, 'output model');
  const model = loadModel(request.model);
  model.save(output);
  const meta = new Map((model.proto.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
  return {
    output,
    architecture: meta.get('otfuse.hf.architecture') ?? '?',
    parameters: model.summary().parameterCount,
    dtypes: meta.get('otfuse.hf.dtypes') ?? '',
  };
}
