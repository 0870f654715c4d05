// `otfuse import` / `otfuse export`: thin shells over engine.importHf / engine.exportHf.
import path from 'node:path';
import { engine } from '../api';
import { OtfuseError } from '../errors';
import { bool, num, rejectUnknown, str, type ParsedArgs } from './args';
import { MODEL_TYPE_LIST } from '../hf/model-types';

export const HF_USAGE = `  otfuse import HF_DIR -o model.onnx      Hugging Face folder (config.json + model.safetensors) → ONNX
  otfuse export MODEL --like HF_DIR -o OUT_DIR [--force]
                       an ONNX model (e.g. a run's fused.onnx) → Hugging Face folder shaped like HF_DIR
                       (model_type ${MODEL_TYPE_LIST})`;

type Print = (args: ParsedArgs, json: unknown, human: () => string) => void;

export async function cmdImport(args: ParsedArgs, print: Print): Promise<number> {
  rejectUnknown(args, new Set(['json', 'help', 'output']));
  if (args.positional.length !== 1) throw new OtfuseError('BAD_USAGE', `import needs one Hugging Face folder, got ${args.positional.length}`);
  const output = str(args, 'output');
  if (!output) throw new OtfuseError('BAD_USAGE', 'import needs -o OUTPUT.onnx');
  const result = await engine.importHf({ model: args.positional[0], output });
  print(args, result, () =>
    [
      `output        ${result.output}`,
      `architecture  ${result.architecture}`,
      `parameters    ${result.parameters.toLocaleString('en-US')} (source dtype ${result.dtypes}, float32 in the graph)`,
    ].join('\n'),
  );
  return 0;
}

export async function cmdExport(args: ParsedArgs, print: Print): Promise<number> {
  rejectUnknown(args, new Set(['json', 'help', 'output', 'like', 'force']));
  if (args.positional.length !== 1) throw new OtfuseError('BAD_USAGE', `export needs one model, got ${args.positional.length}`);
  const like = str(args, 'like');
  const output = str(args, 'output');
  if (!like)
    throw new OtfuseError('BAD_USAGE', 'export needs --like HF_DIR (the folder whose layout, config and tokenizer to use; for a fused model, the anchor)');
  if (!output) throw new OtfuseError('BAD_USAGE', 'export needs -o OUTPUT_DIR');
  const result = await engine.exportHf({ model: args.positional[0], like, output, force: bool(args, 'force') });
  print(args, result, () => {
    const changes = Object.entries(result.configChanges)
      .map(([k, [a, b]]) => `${k} ${String(a)} → ${String(b)}`)
      .join(', ');
    return [
      `output    ${result.output}`,
      `tensors   ${result.tensors}`,
      `files     ${result.files.map((f) => path.basename(f)).join(', ')}`,
      ...(changes ? [`config    ${changes}`] : []),
      ...result.skipped.map((k) => `skipped   ${k.name}: ${k.why}`),
    ].join('\n');
  });
  return 0;
}

/** Data flags for text and image-folder datasets (see worker/data/text.ts, worker/data/imagefolder.ts). */
export const HF_DATA_FLAGS = ['tokenizer', 'max-length', 'preprocessor'];

export function addHfDataFlags(args: ParsedArgs, spec: object): void {
  const s = spec as { tokenizer?: string; maxLength?: number; preprocessor?: string };
  const tokenizer = str(args, 'tokenizer');
  if (tokenizer) s.tokenizer = path.resolve(tokenizer);
  const preprocessor = str(args, 'preprocessor');
  if (preprocessor) s.preprocessor = path.resolve(preprocessor);
  const max = num(args, 'max-length');
  if (max !== undefined) {
    if (!Number.isInteger(max) || max < 3) throw new OtfuseError('BAD_USAGE', `--max-length must be an integer ≥ 3, got ${max}`);
    s.maxLength = max;
  }
}
