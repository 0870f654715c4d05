// `otfuse merge`: a thin shell over engine.merge. Its parameter flags, their domains and the usage text come from
// the merge registry (registry.ts / params.ts).
import path from 'node:path';
import { engine } from '../api';
import { OtfuseError } from '../errors';
import { bool, num, numList, oneOf, rejectUnknown, str, type ParsedArgs } from '../cli/args';
import type { JobContext, MergeParams, MergeResult, ProviderChoice } from '../types';
import { MERGE_METHODS, mergeMethodNames, mergeParamSpecs } from './registry';

type Print = (args: ParsedArgs, json: unknown, human: () => string) => void;

/** Boolean flags of `merge` (for the parser). */
export const MERGE_BOOLEANS = [
  'force',
  ...mergeParamSpecs()
    .filter((s) => s.type === 'boolean')
    .map((s) => s.flag),
];

/** The usage line and the flag tokens (worker/cli.ts wraps them like fuse's). */
export const MERGE_USAGE_HEAD = '  otfuse merge A B [C …] --method M [--base BASE] [-o merged.onnx|OUT_DIR]';
export const MERGE_USAGE_TOKENS = [
  `M: ${mergeMethodNames().join('|')}`,
  ...mergeParamSpecs().map((s) =>
    s.type === 'boolean' ? `[--${s.flag}|--no-${s.flag}]` : `[--${s.flag} ${s.type === 'numberList' ? 'W1,W2' : s.flag.toUpperCase()}]`,
  ),
  '[--eval-data DATA]',
  '[--eval-limit N]',
  '[--runs-dir DIR]',
  '(same-base merge of fine-tunes, no alignment; formulas: README "Merging fine-tunes of one base")',
];

const FLAGS = ['method', 'base', 'output', 'runs-dir', 'eval-data', 'eval-limit', 'force', ...mergeParamSpecs().map((s) => s.flag)];

export function mergeParamsFrom(args: ParsedArgs): MergeParams {
  const params: Record<string, unknown> = {};
  for (const s of mergeParamSpecs()) {
    const v = s.type === 'boolean' ? bool(args, s.flag) : s.type === 'numberList' ? numList(args, s.flag) : num(args, s.flag);
    if (v !== undefined) params[s.name] = v;
  }
  return params as MergeParams;
}

export async function cmdMerge(
  args: ParsedArgs,
  print: Print,
  table: (header: string[], rows: string[][]) => string,
  common: { known: (...names: string[]) => Set<string>; provider: ProviderChoice | undefined },
  context: JobContext,
): Promise<number> {
  rejectUnknown(args, common.known(...FLAGS));
  const method = oneOf(args, 'method', mergeMethodNames());
  if (!method) throw new OtfuseError('BAD_USAGE', `merge needs --method (one of ${mergeMethodNames().join(', ')})`);
  if (args.positional.length < 1) throw new OtfuseError('BAD_USAGE', 'merge needs the models to merge');
  const result = await engine
    .merge(
      {
        models: args.positional,
        base: str(args, 'base'),
        method,
        params: mergeParamsFrom(args),
        output: str(args, 'output'),
        force: bool(args, 'force'),
        runsDir: str(args, 'runs-dir'),
        evalData: str(args, 'eval-data'),
        evalLimit: num(args, 'eval-limit'),
        provider: common.provider,
      },
      context,
    )
    .catch((err: unknown) => {
      // Parents whose parameters differ are refused before any work: bad input, exit 2 (the engine's code stays MISMATCH).
      if (err instanceof OtfuseError && err.code === 'MISMATCH')
        throw Object.assign(new OtfuseError('BAD_USAGE', err.message), { file: err.file, node: err.node });
      throw err;
    });
  print(args, result, () => formatMerge(result, table));
  return 0;
}

export function formatMerge(result: MergeResult, table: (header: string[], rows: string[][]) => string): string {
  const r = result.record;
  const m = r.merge!;
  const def = MERGE_METHODS.find((x) => x.name === m.method)!;
  const rows = r.metrics.map((x) => [
    x.label,
    x.accuracy === undefined ? '—' : `${(x.accuracy * 100).toFixed(2)} %`,
    x.loss === undefined ? '—' : x.loss.toFixed(4),
  ]);
  const params = Object.entries(m.params)
    .map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : String(v)}`)
    .join(', ');
  return [
    `run          ${result.runDir}`,
    `merged model ${m.hfOutput ?? result.output}`,
    `method       ${def.name}: ${def.formula}`,
    `parameters   ${params || '—'}`,
    ...(m.base ? [`base         ${path.basename(m.base)}`] : []),
    `tensors      ${m.tensors} merged, ${m.constants} kept from ${path.basename(r.anchor)}${m.colinear ? ` (${m.colinear} near-colinear: linear)` : ''}`,
    '',
    rows.length ? table(['model', 'accuracy', 'loss'], rows) : '(no --eval-data: not evaluated)',
  ].join('\n');
}
