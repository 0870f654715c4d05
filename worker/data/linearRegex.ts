// Tokenizer patterns from a workspace's tokenizer.json run in linear time. @huggingface/tokenizers compiles every
// `{"Regex": …}` of a Split / Replace step into a JS RegExp, and V8's backtracking engine can take minutes on one
// line with a pattern such as `(a+)+$` (ReDoS). Here each such pattern is compiled by RE2JS (re2js, a maintained
// pure-JS port of RE2: automata, no backtracking, linear in the input) and the tokenizer's RegExp is replaced by a
// RegExp whose `exec` runs RE2JS — String.prototype.split / match / matchAll / replaceAll all go through `exec`
// (ECMAScript RegExpExec), so the library's own code keeps working unchanged. A pattern RE2 cannot run (lookaround,
// backreferences: the constructs that need backtracking) is refused, naming tokenizer.json and the pattern's place.
import { RE2JS } from 're2js';
import { OtfuseError } from '../errors';
import { excerpt } from '../io/read';

/** A RegExp whose matching is done by RE2JS (same leftmost-first semantics as JS for the patterns RE2 accepts). */
export class LinearRegExp extends RegExp {
  private readonly re2: RE2JS;
  /** The last unanchored search (input, where it started, where its match began or -1, and the match). */
  private last?: { input: string; from: number; at: number; match: RegExpExecArray | null };

  constructor(re2: RE2JS, flags: string) {
    super('(?:)', flags);
    this.re2 = re2;
  }

  // split() and matchAll() build a new regexp through the species constructor with (regexp, flags).
  static override get [Symbol.species](): RegExpConstructor {
    return function (source: LinearRegExp, flags: string) {
      return new LinearRegExp(source.re2, flags);
    } as unknown as RegExpConstructor;
  }

  override get source(): string {
    return this.re2.pattern();
  }

  override exec(input: string): RegExpExecArray | null {
    const s = String(input);
    const stateful = this.global || this.sticky;
    const from = stateful ? this.lastIndex : 0;
    if (from > s.length) {
      this.lastIndex = 0;
      return null;
    }
    const found = this.search(s, from);
    if (!found || (this.sticky && found.index !== from)) {
      if (stateful) this.lastIndex = 0;
      return null;
    }
    if (stateful) this.lastIndex = found.index + found[0].length;
    return found;
  }

  /** The leftmost match starting at or after `from`. No match starts between an earlier search's start and its
   * match, so that search answers every later `from` up to its match: a sticky caller (split asks at each
   * position) scans the input once instead of once per position. */
  private search(s: string, from: number): RegExpExecArray | null {
    const last = this.last;
    if (last && last.input === s && last.from <= from && (last.at < 0 || from <= last.at)) return last.match;
    const m = this.re2.matcher(s);
    let match: RegExpExecArray | null = null;
    if (m.find(from)) {
      const groups: (string | undefined)[] = [];
      for (let g = 0; g <= m.groupCount(); g++) groups.push(m.group(g) ?? undefined);
      match = Object.assign(groups as unknown as RegExpExecArray, { index: m.start(), input: s, groups: undefined });
    }
    this.last = { input: s, from, at: match ? match.index : -1, match };
    return match;
  }
}

/** Every `{"Regex": pattern}` in a tokenizer.json, with its JSON path. */
export function tokenizerPatterns(json: unknown): { where: string; pattern: string }[] {
  const out: { where: string; pattern: string }[] = [];
  const walk = (v: unknown, where: string, depth: number) => {
    if (depth > 64 || !v || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${where}[${i}]`, depth + 1));
      return;
    }
    for (const [k, x] of Object.entries(v)) {
      if (k === 'Regex' && typeof x === 'string') out.push({ where, pattern: x });
      else if (k !== 'vocab' && k !== 'merges') walk(x, where ? `${where}.${k}` : k, depth + 1);
    }
  };
  walk(json, '', 0);
  return out;
}

/** Limits on tokenizer.json patterns (README, "Threat model, reads"): real ones are a few hundred characters, a
 * handful per tokenizer; compiling is linear in the pattern, but a 60 MB pattern would still take minutes. */
export const PATTERN_LIMITS = { chars: 4096, count: 64 } as const;

/** RE2JS compilations of a tokenizer.json's patterns, keyed by pattern; a pattern RE2 cannot run is refused. */
export function compileTokenizerPatterns(json: unknown, file: string | undefined): Map<string, RE2JS> {
  const compiled = new Map<string, RE2JS>();
  const patterns = tokenizerPatterns(json);
  if (patterns.length > PATTERN_LIMITS.count)
    throw new OtfuseError('UNSUPPORTED', `${patterns.length} patterns, more than the ${PATTERN_LIMITS.count} a tokenizer may hold`, { file });
  for (const { where, pattern } of patterns) {
    if (compiled.has(pattern)) continue;
    if (pattern.length > PATTERN_LIMITS.chars)
      throw new OtfuseError(
        'UNSUPPORTED',
        `the pattern at ${where || 'the top level'} has ${pattern.length} characters, more than the ${PATTERN_LIMITS.chars} accepted`,
        {
          file,
        },
      );
    try {
      compiled.set(pattern, RE2JS.compile(pattern));
    } catch {
      throw new OtfuseError(
        'UNSUPPORTED',
        `the pattern at ${where || 'the top level'} ('${excerpt(pattern, 60)}') needs a backtracking regex engine (lookaround or backreferences); otfuse runs tokenizer patterns in linear time only (RE2 syntax)`,
        { file },
      );
    }
  }
  return compiled;
}

/**
 * Replaces, inside a constructed tokenizer, every RegExp compiled from a tokenizer.json pattern by a LinearRegExp.
 * The library keeps each step's JSON as `config` and its compiled pattern as `pattern`; a pattern that is not found
 * in place (a library change) is an error, never a silent fallback to backtracking.
 */
export function linearizeTokenizer(tokenizer: object, compiled: Map<string, RE2JS>, file: string | undefined): void {
  if (compiled.size === 0) return;
  const replaced = new Set<string>();
  const seen = new Set<object>();
  const visit = (o: unknown, depth: number) => {
    // The library's steps are callables (functions with the step's fields), so functions are walked too.
    if (!o || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o as object) || depth > 32) return;
    seen.add(o as object);
    if (o instanceof Map || ArrayBuffer.isView(o)) return;
    const step = o as { config?: { pattern?: { Regex?: unknown } }; pattern?: unknown };
    const source = step.config?.pattern?.Regex;
    if (typeof source === 'string' && step.pattern instanceof RegExp && compiled.has(source)) {
      if (!(step.pattern instanceof LinearRegExp)) step.pattern = new LinearRegExp(compiled.get(source)!, step.pattern.flags);
      replaced.add(source);
    }
    for (const v of Array.isArray(o) ? o : Object.values(o)) visit(v, depth + 1);
  };
  visit(tokenizer, 0);
  const missed = [...compiled.keys()].find((p) => !replaced.has(p));
  if (missed !== undefined)
    throw new OtfuseError('UNSUPPORTED', `the tokenizer step with pattern '${excerpt(missed, 60)}' is not one otfuse can run in linear time`, { file });
}
