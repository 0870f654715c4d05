// The finetune flags of `otfuse finetune` and `otfuse fuse --finetune`, derived from the finetune option registry
// (FINETUNE_OPTIONS, worker/train/options.ts): which flags exist, how they are read (num(): the registry's domain,
// exit 2 outside it) and their usage tokens.
import { OtfuseError } from '../errors';
import type { FinetuneOptions } from '../types';
import { finetuneOptions, type FinetuneOption } from '../train/options';
import { num, strList, type ParsedArgs } from './args';

export type FinetuneCommand = 'finetune' | 'fuse';

function offered(command: FinetuneCommand): { field: keyof FinetuneOptions; option: FinetuneOption }[] {
  return finetuneOptions().filter(({ option }) => command === 'finetune' || option.fuse);
}

/** The command's finetune flags (for rejectUnknown). */
export function finetuneFlags(command: FinetuneCommand): string[] {
  return offered(command).map(({ option }) => option.flag);
}

/** The finetune options given on the command line (with the teachers); the distillation options need a --teacher. */
export function finetuneOptionsFrom(args: ParsedArgs, command: FinetuneCommand): Partial<FinetuneOptions> {
  const teachers = strList(args, 'teacher');
  const out: Record<string, unknown> = {};
  for (const { field, option } of offered(command)) {
    const value = num(args, option.flag);
    if (value === undefined) continue;
    if (option.distill && !teachers.length) {
      const names = offered(command)
        .filter(({ option: o }) => o.distill)
        .map(({ option: o }) => `--${o.flag}`);
      const list = names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}` : names[0];
      throw new OtfuseError('BAD_USAGE', `${list} need at least one --teacher`);
    }
    out[field] = value;
  }
  if (teachers.length) out.teachers = teachers;
  return out as Partial<FinetuneOptions>;
}

/** One usage token per finetune flag, e.g. `[--lr 0.0002]` (its default) or `[--max-steps N]`. */
export function finetuneUsage(command: FinetuneCommand, distill: boolean): string[] {
  return offered(command)
    .filter(({ option }) => !!option.distill === distill)
    .map(({ option }) => `[--${option.flag} ${option.default ?? 'N'}]`);
}
