// Decoder LMs are fused token for token: both parents must read and write the same vocabulary. Their
// tokenizer.json files (when present) must hold the same model (vocabulary and merges) and added tokens.
import path from 'node:path';
import { OtfuseError } from '../../errors';
import { exists, modelFolderRoot, READ_LIMITS, readJsonObject } from '../../io/read';

function vocabOf(dir: string): string | undefined {
  const file = path.join(dir, 'tokenizer.json');
  if (!exists(file)) return undefined;
  const j = readJsonObject(file, { code: 'BAD_MODEL', what: 'tokenizer.json', maxBytes: READ_LIMITS.tokenizerJson, within: modelFolderRoot(dir) });
  return JSON.stringify([j.model, j.added_tokens]);
}

export function checkSameTokenizer(a: string, b: string): void {
  const va = vocabOf(a);
  const vb = vocabOf(b);
  if (va !== undefined && vb !== undefined && va !== vb)
    throw new OtfuseError(
      'MISMATCH',
      'the tokenizers differ (tokenizer.json vocabulary or merges): decoder LMs can be fused only when they share a tokenizer',
      { file: path.join(b, 'tokenizer.json') },
    );
}
