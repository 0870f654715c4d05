// config.json of a Hugging Face checkpoint: which architectures otfuse builds, and every field it reads, checked.
// Anything outside what the builders reproduce exactly is refused, naming config.json and the field.
import fs from 'node:fs';
import path from 'node:path';
import { OtfuseError } from '../errors';

export const SUPPORTED_ARCHITECTURES = ['ViTForImageClassification', 'BertForSequenceClassification', 'BertForMaskedLM'] as const;
export type HfArchitecture = (typeof SUPPORTED_ARCHITECTURES)[number];

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

export type HfConfig = VitConfig | BertConfig;

export function readConfigJson(dir: string): Record<string, unknown> {
  const file = path.join(dir, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new OtfuseError(
      'BAD_MODEL',
      `not a Hugging Face model folder: cannot read config.json (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      { file },
    );
  }
  try {
    const parsed = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new OtfuseError('BAD_MODEL', `config.json is not valid JSON: ${(err as Error).message}`, { file });
  }
}

export function parseConfig(raw: Record<string, unknown>, file: string): HfConfig {
  const refuse = (field: string, why: string) => new OtfuseError('UNSUPPORTED', `field '${field}': ${why}`, { file });
  const int = (field: string, fallback?: number): number => {
    const v = raw[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
      throw new OtfuseError('BAD_MODEL', `field '${field}' must be a positive integer, got ${JSON.stringify(raw[field])}`, { file });
    return v;
  };
  const archs = raw.architectures;
  if (!Array.isArray(archs) || archs.length !== 1 || typeof archs[0] !== 'string') {
    throw refuse('architectures', `expected one architecture (${SUPPORTED_ARCHITECTURES.join(', ')}), got ${JSON.stringify(archs)}`);
  }
  const architecture = archs[0] as HfArchitecture;
  if (!SUPPORTED_ARCHITECTURES.includes(architecture))
    throw refuse('architectures', `'${architecture}' is not supported (supported: ${SUPPORTED_ARCHITECTURES.join(', ')})`);
  const modelType = raw.model_type;
  const family = architecture.startsWith('ViT') ? 'vit' : 'bert';
  if (modelType !== family) throw refuse('model_type', `'${String(modelType)}' does not match the architecture ${architecture} (expected '${family}')`);
  const act = raw.hidden_act ?? 'gelu';
  if (typeof act !== 'string' || !(act in ACTIVATIONS))
    throw refuse('hidden_act', `'${String(act)}' is not supported (supported: ${Object.keys(ACTIVATIONS).join(', ')})`);
  const eps = raw.layer_norm_eps ?? 1e-12;
  if (typeof eps !== 'number' || !(eps > 0)) throw new OtfuseError('BAD_MODEL', `field 'layer_norm_eps' must be a positive number`, { file });
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
    torchDtype: typeof raw.torch_dtype === 'string' ? raw.torch_dtype : undefined,
  };
  for (const flag of ['is_decoder', 'add_cross_attention', 'is_encoder_decoder']) {
    if (raw[flag] === true) throw refuse(flag, 'decoder / cross-attention models are not supported');
  }
  const labels = labelCount(raw, file);
  if (labels === 1) throw refuse('num_labels', 'one label means regression in Hugging Face (MSE loss); otfuse fuses classifiers');
  if (family === 'vit') {
    const imageSize = int('image_size');
    const patchSize = int('patch_size');
    if (imageSize % patchSize !== 0) throw refuse('patch_size', `${patchSize} does not divide image_size ${imageSize}`);
    if (raw.qkv_bias !== undefined && typeof raw.qkv_bias !== 'boolean') throw new OtfuseError('BAD_MODEL', `field 'qkv_bias' must be true or false`, { file });
    if (labels === undefined) throw new OtfuseError('BAD_MODEL', `field 'id2label' (or 'num_labels') is missing: cannot size the classifier`, { file });
    return {
      family: 'vit',
      architecture: 'ViTForImageClassification',
      ...common,
      imageSize,
      patchSize,
      channels: int('num_channels', 3),
      qkvBias: raw.qkv_bias !== false,
      labels,
    };
  }
  const posType = raw.position_embedding_type ?? 'absolute';
  if (posType !== 'absolute') throw refuse('position_embedding_type', `'${String(posType)}' is not supported (only 'absolute')`);
  if (architecture === 'BertForSequenceClassification') {
    if (labels === undefined) throw new OtfuseError('BAD_MODEL', `field 'id2label' (or 'num_labels') is missing: cannot size the classifier`, { file });
    const problem = raw.problem_type;
    if (problem !== undefined && problem !== null && problem !== 'single_label_classification')
      throw refuse('problem_type', `'${String(problem)}' is not supported (only single_label_classification)`);
  }
  return {
    family: 'bert',
    architecture: architecture as BertConfig['architecture'],
    ...common,
    vocab: int('vocab_size'),
    maxPositions: int('max_position_embeddings', 512),
    typeVocab: int('type_vocab_size', 2),
    labels: architecture === 'BertForSequenceClassification' ? labels : undefined,
    tied: raw.tie_word_embeddings !== false,
  };
}

function labelCount(raw: Record<string, unknown>, file: string): number | undefined {
  const id2label = raw.id2label;
  if (id2label && typeof id2label === 'object') {
    const n = Object.keys(id2label).length;
    if (raw.num_labels !== undefined && raw.num_labels !== n)
      throw new OtfuseError('BAD_MODEL', `field 'num_labels' (${String(raw.num_labels)}) disagrees with id2label (${n} labels)`, { file });
    return n;
  }
  return typeof raw.num_labels === 'number' ? raw.num_labels : undefined;
}
