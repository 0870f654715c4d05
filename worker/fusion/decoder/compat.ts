// The cheap compatibility check (engine.check, worker/graph/compat.ts's report) for decoder LM folders: config.json
// and the tokenizer only, no weights read. Decoder folders are fused by worker/fusion/decoder, not through the ONNX
// graph analysis, so that analysis would refuse them; the extension asks this before any prompt.
import path from 'node:path';
import { OtfuseError } from '../../errors';
import { hfFolderOf } from '../../hf/checkpoint';
import { parseConfig, readConfigJson } from '../../hf/config';
import type { DecoderConfig } from '../../hf/config-decoder';
import type { CompatibilityReport, ModelCheck } from '../../graph/compat';
import { checkCompatible } from './fuse';

function decoderConfigOf(file: string): { dir: string; config: DecoderConfig } {
  const dir = hfFolderOf(file);
  if (!dir) throw new OtfuseError('BAD_MODEL', 'not a Hugging Face model folder', { file });
  const config = parseConfig(readConfigJson(dir), path.join(dir, 'config.json'));
  if (!('family' in config) || (config.family !== 'gpt2' && config.family !== 'llama'))
    throw new OtfuseError('MISMATCH', `not a decoder language model (${config.architecture}): the first model is one`, { file });
  return { dir, config };
}

export function checkDecoderCompatibility(files: string[]): CompatibilityReport {
  const models: ModelCheck[] = [];
  const parents: ({ dir: string; config: DecoderConfig } | undefined)[] = [];
  for (const file of files) {
    try {
      const p = decoderConfigOf(file);
      parents.push(p);
      const c = p.config;
      models.push({
        file,
        ok: true,
        structure: {
          layers: c.layers,
          hidden: c.hidden,
          heads: c.heads,
          mlp: c.intermediate,
          tokens: c.maxPositions,
          classes: c.vocab,
          norm: 'pre',
          embedding: 'tokens',
          packedQkv: c.family === 'gpt2',
          seqFirst: false,
        },
      });
    } catch (e) {
      if (!(e instanceof OtfuseError)) throw e;
      parents.push(undefined);
      models.push({ file, ok: false, error: { code: e.code, message: e.message, ...(e.node ? { node: e.node } : {}) } });
    }
  }
  const problems: string[] = [];
  if (files.length !== 2) problems.push(`decoder LMs are fused two at a time (got ${files.length} models)`);
  const [anchor, ...rest] = parents;
  for (const [k, p] of rest.entries()) {
    if (!anchor || !p) continue;
    try {
      checkCompatible(anchor, p);
    } catch (e) {
      if (!(e instanceof OtfuseError)) throw e;
      problems.push(`${files[k + 1]}: ${e.message}`);
    }
  }
  // A model that could not be read says why in the problems too (the extension shows only this list).
  for (const m of models) if (m.error) problems.push(`${m.file}: ${m.error.message}`);
  return { ok: models.every((m) => m.ok) && problems.length === 0, models, problems, heterogeneous: false };
}
