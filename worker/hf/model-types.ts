// The Hugging Face model types otfuse imports and exports, one entry per config.json `model_type`: the builder
// family, the architectures built for it, and for encoders the tensors whose shapes give the widths an export
// writes back into config.json (a heterogeneous fusion changes them). The importer's dispatch (config.ts), the
// export (export.ts) and the CLI's usage text derive from this table; adding a model type is adding its line here
// plus its config parser and builder (decoders: config-decoder.ts, build-decoder.ts).
import { DECODER_TYPES, type DecoderType } from './config-decoder';

export type HfFamily = 'vit' | 'bert' | 'gpt2' | 'llama';

export interface HfModelType {
  family: HfFamily;
  architectures: readonly string[];
  /** config.json field → the checkpoint tensor whose first dimension it is (encoders; decoders keep their widths). */
  widths?: Readonly<Record<'hidden_size' | 'intermediate_size', string>>;
}

const ENCODER_TYPES = {
  vit: {
    family: 'vit',
    architectures: ['ViTForImageClassification'],
    widths: { hidden_size: 'vit.layernorm.weight', intermediate_size: 'vit.encoder.layer.0.intermediate.dense.weight' },
  },
  bert: {
    family: 'bert',
    architectures: ['BertForSequenceClassification', 'BertForMaskedLM'],
    widths: { hidden_size: 'bert.embeddings.LayerNorm.weight', intermediate_size: 'bert.encoder.layer.0.intermediate.dense.weight' },
  },
} as const satisfies Record<string, HfModelType>;
export type EncoderType = keyof typeof ENCODER_TYPES;

/** Every model type, encoders and decoders (a decoder type missing here fails to compile). */
export const HF_MODEL_TYPES: Readonly<Record<EncoderType | DecoderType, HfModelType>> = {
  ...ENCODER_TYPES,
  // Decoder LMs (config-decoder.ts, build-decoder.ts): Mistral and Qwen2 are built as Llama.
  gpt2: { family: 'gpt2', architectures: [DECODER_TYPES.gpt2] },
  llama: { family: 'llama', architectures: [DECODER_TYPES.llama] },
  mistral: { family: 'llama', architectures: [DECODER_TYPES.mistral] },
  qwen2: { family: 'llama', architectures: [DECODER_TYPES.qwen2] },
};

export const isEncoderType = (t: unknown): t is EncoderType => typeof t === 'string' && Object.hasOwn(ENCODER_TYPES, t);

/** The encoder architectures (ViT, BERT) in the table's order. */
export const ENCODER_ARCHITECTURES = Object.values(ENCODER_TYPES).flatMap((t) => t.architectures);
export type EncoderArchitecture = (typeof ENCODER_TYPES)[EncoderType]['architectures'][number];

/** The model_type an encoder architecture belongs to. */
export const encoderTypeOf = (architecture: string): EncoderType | undefined =>
  (Object.keys(ENCODER_TYPES) as EncoderType[]).find((t) => (ENCODER_TYPES[t].architectures as readonly string[]).includes(architecture));

/** "vit, bert, gpt2, …" for messages and usage text. */
export const MODEL_TYPE_LIST = Object.keys(HF_MODEL_TYPES).join(', ');
