// A small flag parser: `--name value`, `--name=value`, boolean `--flag`, `--no-flag`, short aliases.
import { OtfuseError } from '../errors';
import { checkNumber, checkWeights } from '../numbers';

/** A plain decimal number: no hex, no empty string, no whitespace (which Number() would read as 0). */
const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

export interface ParsedArgs {
  positional: string[];
  flags: Map<string, string | boolean>;
  /** Every value of each value-taking flag, in order (for repeatable flags such as --teacher). */
  all?: Map<string, string[]>;
}

export function parseArgs(argv: string[], booleans: ReadonlySet<string>, aliases: Record<string, string> = {}): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | boolean>();
  const all = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    let name = arg.replace(/^--?/, '');
    let value: string | boolean | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    name = aliases[name] ?? name;
    if (booleans.has(name)) {
      flags.set(name, value === undefined ? true : value !== 'false');
      continue;
    }
    if (name.startsWith('no-') && booleans.has(name.slice(3))) {
      flags.set(name.slice(3), false);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new OtfuseError('BAD_USAGE', `--${name} needs a value`);
      value = argv[++i];
    }
    flags.set(name, value);
    all.set(name, [...(all.get(name) ?? []), String(value)]);
  }
  return { positional, flags, all };
}

export function str(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

/** All values of a repeatable flag (`--teacher A --teacher B`), in order; [] when absent. */
export function strList(args: ParsedArgs, name: string): string[] {
  return args.all?.get(name) ?? (typeof args.flags.get(name) === 'string' ? [args.flags.get(name) as string] : []);
}

export function num(args: ParsedArgs, name: string): number | undefined {
  const v = str(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!NUMBER_TEXT.test(v.trim()) || !Number.isFinite(n)) throw new OtfuseError('BAD_USAGE', `--${name} must be a number, got '${v}'`);
  return checkNumber(name, n);
}

export function numList(args: ParsedArgs, name: string): number[] | undefined {
  const v = str(args, name);
  if (v === undefined) return undefined;
  const parts = v.split(',').map((s) => s.trim());
  const list = parts.map(Number);
  if (parts.some((s) => !NUMBER_TEXT.test(s)) || list.some((n) => !Number.isFinite(n)))
    throw new OtfuseError('BAD_USAGE', `--${name} must be a comma-separated list of numbers, got '${v}'`);
  for (const n of list) checkNumber(name, n);
  if (name === 'weights') checkWeights(list);
  return list;
}

export function bool(args: ParsedArgs, name: string): boolean | undefined {
  const v = args.flags.get(name);
  return typeof v === 'boolean' ? v : undefined;
}

export function oneOf<T extends string>(args: ParsedArgs, name: string, allowed: readonly T[]): T | undefined {
  const v = str(args, name);
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) throw new OtfuseError('BAD_USAGE', `--${name} must be one of ${allowed.join(', ')}; got '${v}'`);
  return v as T;
}

/** Flags no command knows are usage errors, not silently ignored. */
export function rejectUnknown(args: ParsedArgs, known: ReadonlySet<string>): void {
  for (const name of args.flags.keys()) if (!known.has(name)) throw new OtfuseError('BAD_USAGE', `unknown option --${name}`);
}
