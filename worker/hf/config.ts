// config.json of a Hugging Face checkpoint: which architectures otfuse builds, and every field it reads, checked.
// Anything outside what the builders reproduce exactly is refused, naming config.json and the field.
import path from 'node:path';
import { OtfuseError } from '../errors';
import { excerpt, exists, modelFolderRoot, READ_LIMITS, readJsonObject } from '../io/read';
import { isDecoderType, parseDecoderConfig, type DecoderConfig } from './config-decoder';
import { ENCODER_ARCHITECTURES, encoderTypeOf, isEncoderType, MODEL_TYPE_LIST, type EncoderArchitecture } from './model-types';

export type HfArchitecture = EncoderArchitecture;

/** hidden_act values and the ONNX activation each one becomes. */
export const ACTIVATIONS = { gelu: 'erf', relu: 'relu' } as const;
export type HfActivation = keyof typeof ACTIVATIONS;

interface Common {
  architecture: HfArchitecture;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  act: HfActivation;
  eps: number;
  /** Source dtype recorded by the checkpoint (torch_dtype), informational. */
  torchDtype?: string;
}

export interface VitConfig extends Common {
  family: 'vit';
  architecture: 'ViTForImageClassification';
  imageSize: number;
  patchSize: number;
  channels: number;
  qkvBias: boolean;
  labels: number;
}

export interface BertConfig extends Common {
  family: 'bert';
  architecture: 'BertForSequenceClassification' | 'BertForMaskedLM';
  vocab: number;
  maxPositions: number;
  typeVocab: number;
  /** Sequence classification: number of labels. */
  labels?: number;
  /** MLM: decoder weight tied to the word embeddings (tie_word_embeddings, default true). */
  tied: boolean;
}

export type HfConfig = VitConfig | BertConfig | DecoderConfig;

export function readConfigJson(dir: string): Record<string, unknown> {
  const file = path.join(dir, 'config.json');
  if (!exists(file)) throw new OtfuseError('BAD_MODEL', 'not a Hugging Face model folder: no config.json', { file });
  return readJsonObject(file, { code: 'BAD_MODEL', what: 'config.json', maxBytes: READ_LIMITS.json, within: modelFolderRoot(dir) });
}

/** The range of every number otfuse reads from config.json (inclusive). Documented in README.md. */
export const CONFIG_RANGES = {
  hidden_size: [1, 65_536],
  num_hidden_layers: [1, 1_024],
  num_attention_heads: [1, 4_096],
  intermediate_size: [1, 262_144],
  vocab_size: [1, 1_048_576],
  max_position_embeddings: [1, 131_072],
  type_vocab_size: [1, 1_024],
  image_size: [1, 8_192],
  patch_size: [1, 8_192],
  num_channels: [1, 64],
  num_labels: [2, 100_000],
  layer_norm_eps: [1e-30, 0.1],
} as const satisfies Record<string, readonly [number, number]>;

/** `raw[field]` only when it is the object's own property (never a prototype's: `constructor`, `toString`). */
const own = (raw: Record<string, unknown>, field: string): unknown => (Object.hasOwn(raw, field) ? raw[field] : undefined);

export function parseConfig(raw: Record<string, unknown>, file: string): HfConfig {
  const refuse = (field: string, why: string) => new OtfuseError('UNSUPPORTED', `field '${field}': ${why}`, { file });
  const int = (field: keyof typeof CONFIG_RANGES, fallback?: number): number => {
    const v = own(raw, field) ?? fallback;
    const [lo, hi] = CONFIG_RANGES[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < lo || v > hi)
      throw new OtfuseError('BAD_MODEL', `field '${field}' must be an integer from ${lo} to ${hi}, got ${excerpt(own(raw, field))}`, { file });
    return v;
  };
  const modelType = own(raw, 'model_type');
  if (isDecoderType(modelType)) return parseDecoderConfig(raw, file, modelType);
  if (typeof modelType === 'string' && !isEncoderType(modelType))
    throw refuse('model_type', `'${excerpt(modelType)}' is not supported (supported: ${MODEL_TYPE_LIST})`);
  const archs = own(raw, 'architectures');
  if (!Array.isArray(archs) || archs.length !== 1 || typeof archs[0] !== 'string') {
    throw refuse('architectures', `expected one architecture (${ENCODER_ARCHITECTURES.join(', ')}), got ${excerpt(archs)}`);
  }
  const architecture = archs[0] as HfArchitecture;
  const family = encoderTypeOf(architecture);
  if (!family) throw refuse('architectures', `'${excerpt(architecture)}' is not supported (supported: ${ENCODER_ARCHITECTURES.join(', ')})`);
  if (modelType !== family) throw refuse('model_type', `'${excerpt(modelType)}' does not match the architecture ${architecture} (expected '${family}')`);
  const act = own(raw, 'hidden_act') ?? 'gelu';
  if (typeof act !== 'string' || !Object.hasOwn(ACTIVATIONS, act))
    throw refuse('hidden_act', `'${excerpt(act)}' is not supported (supported: ${Object.keys(ACTIVATIONS).join(', ')})`);
  const eps = own(raw, 'layer_norm_eps') ?? 1e-12;
  const [epsLo, epsHi] = CONFIG_RANGES.layer_norm_eps;
  if (typeof eps !== 'number' || !(eps >= epsLo && eps <= epsHi))
    throw new OtfuseError('BAD_MODEL', `field 'layer_norm_eps' must be a number from ${epsLo} to ${epsHi}, got ${excerpt(own(raw, 'layer_norm_eps'))}`, {
      file,
    });
  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  if (hidden % heads !== 0) throw new OtfuseError('BAD_MODEL', `field 'hidden_size' (${hidden}) is not a multiple of num_attention_heads (${heads})`, { file });
  const common = {
    hidden,
    heads,
    layers: int('num_hidden_layers'),
    intermediate: int('intermediate_size'),
    act: act as HfActivation,
    eps,
    torchDtype: typeof own(raw, 'torch_dtype') === 'string' ? excerpt(own(raw, 'torch_dtype'), 16) : undefined,
  };
  for (const flag of ['is_decoder', 'add_cross_attention', 'is_encoder_decoder']) {
    if (own(raw, flag) === true) throw refuse(flag, 'decoder / cross-attention models are not supported');
  }
  const labels = labelCount(raw, file);
  if (labels === 1) throw refuse('num_labels', 'one label means regression in Hugging Face (MSE loss); otfuse fuses classifiers');
  if (family === 'vit') {
    const imageSize = int('image_size');
    const patchSize = int('patch_size');
    if (imageSize % patchSize !== 0) throw refuse('patch_size', `${patchSize} does not divide image_size ${imageSize}`);
    if (own(raw, 'qkv_bias') !== undefined && typeof own(raw, 'qkv_bias') !== 'boolean')
      throw new OtfuseError('BAD_MODEL', `field 'qkv_bias' must be true or false`, { file });
    if (labels === undefined) throw new OtfuseError('BAD_MODEL', `field 'id2label' (or 'num_labels') is missing: cannot size the classifier`, { file });
    return {
      family: 'vit',
      architecture: 'ViTForImageClassification',
      ...common,
      imageSize,
      patchSize,
      channels: int('num_channels', 3),
      qkvBias: own(raw, 'qkv_bias') !== false,
      labels,
    };
  }
  const posType = own(raw, 'position_embedding_type') ?? 'absolute';
  if (posType !== 'absolute') throw refuse('position_embedding_type', `'${excerpt(posType)}' is not supported (only 'absolute')`);
  if (architecture === 'BertForSequenceClassification') {
    if (labels === undefined) throw new OtfuseError('BAD_MODEL', `field 'id2label' (or 'num_labels') is missing: cannot size the classifier`, { file });
    const problem = own(raw, 'problem_type');
    if (problem !== undefined && problem !== null && problem !== 'single_label_classification')
      throw refuse('problem_type', `'${excerpt(problem)}' is not supported (only single_label_classification)`);
  }
  return {
    family: 'bert',
    architecture: architecture as BertConfig['architecture'],
    ...common,
    vocab: int('vocab_size'),
    maxPositions: int('max_position_embeddings', 512),
    typeVocab: int('type_vocab_size', 2),
    labels: architecture === 'BertForSequenceClassification' ? labels : undefined,
    tied: own(raw, 'tie_word_embeddings') !== false,
  };
}

function labelCount(raw: Record<string, unknown>, file: string): number | undefined {
  const id2label = own(raw, 'id2label');
  const numLabels = own(raw, 'num_labels');
  const [lo, hi] = CONFIG_RANGES.num_labels;
  let n: number | undefined;
  if (id2label && typeof id2label === 'object' && !Array.isArray(id2label)) {
    const keys = Object.keys(id2label);
    n = keys.length;
    if (keys.some((k) => !/^\d{1,6}$/.test(k) || Number(k) >= keys.length))
      throw new OtfuseError('BAD_MODEL', `field 'id2label' must map the class indices 0…${n - 1} to names`, { file });
    if (numLabels !== undefined && numLabels !== n)
      throw new OtfuseError('BAD_MODEL', `field 'num_labels' (${excerpt(numLabels)}) disagrees with id2label (${n} labels)`, { file });
  } else if (id2label !== undefined && id2label !== null) {
    throw new OtfuseError('BAD_MODEL', `field 'id2label' must be an object mapping class indices to names`, { file });
  } else if (numLabels !== undefined) {
    if (typeof numLabels !== 'number' || !Number.isSafeInteger(numLabels))
      throw new OtfuseError('BAD_MODEL', `field 'num_labels' must be an integer, got ${excerpt(numLabels)}`, { file });
    n = numLabels;
  }
  if (n !== undefined && n !== 1 && (n < lo || n > hi))
    throw new OtfuseError('BAD_MODEL', `field 'id2label' / 'num_labels' must give ${lo} to ${hi} labels, got ${n}`, { file });
  return n;
}
