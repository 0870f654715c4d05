// BERT-style tokenization through Hugging Face's own pure-JS tokenizers (@huggingface/tokenizers): a model
// folder's tokenizer.json, or one built from a vocab.txt-only folder (BERT normalizer + pre-tokenizer +
// WordPiece). Truncation (longest_first) and [CLS]/[SEP] assembly are done here: tokenizers.js has no truncation.
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { OtfuseError } from '../errors';
import { excerpt, exists, modelFolderRoot, pathKind, READ_LIMITS, readJsonObject, readText } from '../io/read';
import { compileTokenizerPatterns, linearizeTokenizer } from './linearRegex';

export interface BertTokenizer {
  /** The folder (or tokenizer.json) it came from. */
  source: string;
  encode(text: string, pair?: string, maxLength?: number): { ids: number[]; typeIds: number[] };
  padId: number;
  /** The model folder's config.json, when there is one (label2id, max_position_embeddings). */
  modelConfig?: Record<string, unknown>;
  /** tokenizer_config.json's model_max_length, when given. */
  modelMaxLength?: number;
}

/** A JSON file of the tokenizer folder: regular, bounded, inside the folder. */
function readJson(file: string, dir: string, maxBytes: number = READ_LIMITS.json): Record<string, unknown> {
  return readJsonObject(file, { code: 'BAD_DATA', what: path.basename(file), maxBytes, within: modelFolderRoot(dir) });
}

/** tokenizer.json for a vocab.txt (one token per line, line number = id), as BertTokenizerFast would build it. */
export function wordPieceTokenizerJson(vocabFile: string, lowercase = true): Record<string, unknown> {
  const vocab: Record<string, number> = Object.create(null);
  readText(vocabFile, { code: 'BAD_DATA', what: 'vocab.txt', maxBytes: READ_LIMITS.vocab, within: modelFolderRoot(path.dirname(vocabFile)) })
    .split('\n')
    .forEach((line, i, all) => {
      const token = line.replace(/\r$/, '');
      if (i === all.length - 1 && token === '') return;
      if (!Object.hasOwn(vocab, token)) vocab[token] = i;
    });
  for (const t of ['[UNK]', '[CLS]', '[SEP]']) {
    if (!Object.hasOwn(vocab, t)) throw new OtfuseError('BAD_DATA', `vocab.txt has no '${t}' token`, { file: vocabFile });
  }
  const special = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].filter((t) => Object.hasOwn(vocab, t));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special.map((t) => ({ id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', vocab['[SEP]']], cls: ['[CLS]', vocab['[CLS]']] },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

interface OpenedTokenizer {
  tokenizer: Tokenizer;
  tokConfig: Record<string, unknown>;
  dir: string;
  file: string | undefined;
  special(name: string, fallback: string): number;
}

/** tokenizer.json (else vocab.txt) of a folder, or the file itself, through @huggingface/tokenizers. */
function openTokenizer(where: string): OpenedTokenizer {
  let dir = where;
  let tokFile: string | undefined;
  let vocabFile: string | undefined;
  if (pathKind(where) === 'file') {
    dir = path.dirname(where);
    if (where.endsWith('.txt')) vocabFile = where;
    else tokFile = where;
  } else {
    if (exists(path.join(dir, 'tokenizer.json'))) tokFile = path.join(dir, 'tokenizer.json');
    else if (exists(path.join(dir, 'vocab.txt'))) vocabFile = path.join(dir, 'vocab.txt');
    else throw new OtfuseError('BAD_DATA', 'no tokenizer.json or vocab.txt in the tokenizer folder', { file: where });
  }
  const configFile = path.join(dir, 'tokenizer_config.json');
  const tokConfig = exists(configFile) ? readJson(configFile, dir) : {};
  const json = tokFile ? readJson(tokFile, dir, READ_LIMITS.tokenizerJson) : wordPieceTokenizerJson(vocabFile!, tokConfig.do_lower_case !== false);
  // Patterns checked (RE2 syntax) before the library compiles them, then run by RE2JS (linear time, no ReDoS).
  const patterns = compileTokenizerPatterns(json, tokFile);
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(json, tokConfig);
  } catch (err) {
    throw new OtfuseError('BAD_DATA', `unsupported tokenizer: ${excerpt((err as Error).message, 120)}`, { file: tokFile ?? vocabFile });
  }
  linearizeTokenizer(tokenizer, patterns, tokFile);
  const special = (name: string, fallback: string): number => {
    // A string, or an AddedToken object ({"content": …}) as older tokenizer_config.json files write it.
    const v = tokConfig[name];
    const content = v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : undefined;
    const token = typeof v === 'string' ? v : (content ?? fallback);
    const id = tokenizer.token_to_id(token);
    if (id === undefined) throw new OtfuseError('BAD_DATA', `the tokenizer has no '${excerpt(token)}' token (${name})`, { file: tokFile ?? vocabFile });
    return id;
  };
  return { tokenizer, tokConfig, dir, file: tokFile ?? vocabFile, special };
}

/** A causal LM's tokenizer (byte-level BPE, tokenizer.json): plain ids (no specials added) and the EOS id. */
export interface CausalTokenizer {
  source: string;
  encode(text: string): number[];
  eosId: number;
  vocabSize: number;
}

export function loadCausalTokenizer(where: string): CausalTokenizer {
  const { tokenizer, special } = openTokenizer(where);
  const eosId = special('eos_token', '<|endoftext|>');
  return {
    source: where,
    eosId,
    vocabSize: tokenizer.get_vocab(true).size,
    encode: (text) => tokenizer.encode(text, { add_special_tokens: false }).ids,
  };
}

/** The tokenizer of a model folder (tokenizer.json, else vocab.txt), or of a tokenizer.json / vocab.txt file. */
export function loadTokenizer(where: string): BertTokenizer {
  const { tokenizer, tokConfig, dir, special } = openTokenizer(where);
  const cls = special('cls_token', '[CLS]');
  const sep = special('sep_token', '[SEP]');
  const padId = special('pad_token', '[PAD]');
  const modelConfigFile = path.join(dir, 'config.json');
  const modelConfig = exists(modelConfigFile) ? readJson(modelConfigFile, dir) : undefined;
  const mml = tokConfig.model_max_length;
  return {
    source: where,
    padId,
    modelConfig,
    modelMaxLength: typeof mml === 'number' && mml > 0 && mml < 1e6 ? mml : undefined,
    encode(text, pair, maxLength) {
      let a = tokenizer.encode(text, { add_special_tokens: false }).ids;
      let b = pair === undefined ? undefined : tokenizer.encode(pair, { add_special_tokens: false }).ids;
      if (maxLength !== undefined) {
        const budget = maxLength - (b ? 3 : 2);
        if (budget < 0) throw new OtfuseError('BAD_USAGE', `maxLength ${maxLength} leaves no room for the special tokens`);
        // longest_first: drop one token at a time from the longer sequence (the second one on ties).
        const excess = a.length + (b?.length ?? 0) - budget;
        if (excess > 0) {
          let la = a.length;
          let lb = b?.length ?? 0;
          for (let k = 0; k < excess; k++) {
            if (!b || la > lb) la--;
            else lb--;
          }
          a = a.slice(0, la);
          if (b) b = b.slice(0, lb);
        }
      }
      const ids = [cls, ...a, sep, ...(b ? [...b, sep] : [])];
      const typeIds = ids.map((_, i) => (i < a.length + 2 ? 0 : 1));
      return { ids, typeIds };
    },
  };
}
