// The engine's file-access owner for reads from a workspace that may be hostile. Every engine reader goes through
// here (or through worker/onnx/files.ts, the low-level descriptor layer it builds on):
//  - regular files only: a FIFO, socket or device is refused at open (opened O_NONBLOCK, so a FIFO cannot hang the
//    open and /dev/zero is never read), and a regular file never blocks a read;
//  - sizes checked against a documented limit before anything is allocated (READ_LIMITS, listed in the README);
//  - containment on real paths: a file read from a folder (a model folder, an image folder, a --like folder) must
//    resolve, symlinks followed, to a path inside that folder's real path; a link that leaves it is refused;
//  - error text names the file and never repeats more than a short, sanitised excerpt of its bytes.
// Raw `fs` imports outside the owner modules are refused by the lint rule in eslint.config.mjs.
import fs from 'node:fs';
import path from 'node:path';
import type { ErrorCode } from '../errors';
import { OtfuseError } from '../errors';
import { closeQuietly, fileError, openRegular, readExactly, readRegularFile, type OpenedFile } from '../onnx/files';

const MiB = 2 ** 20;

/** The largest file each kind of reader accepts (bytes). Documented in README.md ("Limits on what otfuse reads"). */
export const READ_LIMITS = {
  /** config.json, tokenizer_config.json, special_tokens_map.json, preprocessor_config.json, the shard index, data specs. */
  json: 16 * MiB,
  /** tokenizer.json (large multilingual vocabularies are tens of MB). */
  tokenizerJson: 64 * MiB,
  /** vocab.txt. */
  vocab: 16 * MiB,
  /** A safetensors header (the JSON after the 8-byte length; a large LLM's is well under 1 MB). */
  safetensorsHeader: 16 * MiB,
  /** Tensors described by one safetensors header. */
  safetensorsTensors: 100_000,
  /** A .jsonl / .csv text dataset, read whole. */
  text: 256 * MiB,
  /** One PNG / JPEG file. */
  image: 64 * MiB,
  /** Decoded pixels of one image (width × height). */
  imagePixels: 64 * 2 ** 20,
  /** A run.json next to a model being exported (for its model card). */
  runJson: 16 * MiB,
} as const;

export interface ReadOptions {
  /** The error code for a refusal (BAD_MODEL for model folders, BAD_DATA for datasets). */
  code: ErrorCode;
  /** What the file is, for messages ("config.json", "image"). */
  what: string;
  maxBytes: number;
  /** The folder the file must lie in (real paths, symlinks resolved on both). */
  within?: string;
}

/**
 * The folder whose inside a model folder's files may link to: the folder itself, or — for a snapshot of the
 * Hugging Face cache (`…/models--org--name/snapshots/<revision>/`, whose files are links to `../../blobs/<sha>`) —
 * that repository's cache folder, which holds only that repository's files.
 */
export function modelFolderRoot(dir: string): string {
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch {
    return dir;
  }
  const snapshots = path.dirname(real);
  const repo = path.dirname(snapshots);
  return path.basename(snapshots) === 'snapshots' && /^models--[^/\\]+$/.test(path.basename(repo)) ? repo : real;
}

/** Refuses `file` unless its real path lies inside the real path of `dir` (a symlink out of the folder is refused). */
export function requireInside(dir: string, file: string, code: ErrorCode, what: string): string {
  let realDir: string;
  let real: string;
  try {
    realDir = fs.realpathSync(dir);
    real = fs.realpathSync(file);
  } catch (err) {
    throw fileError(err, code, `cannot open ${what}`, file);
  }
  const prefix = realDir.endsWith(path.sep) ? realDir : realDir + path.sep;
  if (!real.startsWith(prefix))
    throw new OtfuseError(code, `the ${what} is a link to a file outside its folder ${dir}; otfuse reads nothing through a link that leaves the folder`, {
      file,
    });
  return real;
}

/** True when `file` exists and its real path lies inside `dir`'s real path. */
export function isInside(dir: string, file: string): boolean {
  try {
    const realDir = fs.realpathSync(dir);
    const real = fs.realpathSync(file);
    return real.startsWith(realDir.endsWith(path.sep) ? realDir : realDir + path.sep);
  } catch {
    return false;
  }
}

/** The bytes of a regular file of at most `maxBytes`, optionally confined to a folder. */
export function readBytes(file: string, o: ReadOptions): Uint8Array {
  if (o.within) requireInside(o.within, file, o.code, o.what);
  return readRegularFile(file, o.code, o.what, o.maxBytes);
}

/** UTF-8 text of a regular file (a byte-order mark dropped); invalid UTF-8 is refused, not replaced. */
export function readText(file: string, o: ReadOptions): string {
  const bytes = readBytes(file, o);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    throw new OtfuseError(o.code, `the ${o.what} is not UTF-8 text`, { file });
  }
}

/** JSON.parse with an error that says where, never what: V8's messages quote the input ("root:x:0:0"…). */
export function parseJsonText(text: string, code: ErrorCode, what: string, file?: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new OtfuseError(code, `${what} is not valid JSON${jsonErrorWhere(err, text)}`, { file });
  }
}

/** Where JSON.parse failed (line, column), without V8's quote of the input. */
export function jsonErrorWhere(err: unknown, text: string): string {
  const msg = (err as Error)?.message ?? '';
  if (/Unexpected end of JSON input/.test(msg)) return ' (it ends early)';
  const m = /at position (\d+)/.exec(msg);
  if (!m) return '';
  const pos = Math.min(Number(m[1]), text.length);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  return ` (line ${line}, column ${pos - before.lastIndexOf('\n')})`;
}

/** A JSON object read from a regular file (bounded, optionally confined); anything else is refused with `o.code`. */
export function readJsonObject(file: string, o: ReadOptions): Record<string, unknown> {
  const parsed = parseJsonText(readText(file, o), o.code, o.what, file);
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new OtfuseError(o.code, `${o.what} is not a JSON object`, { file });
  return parsed as Record<string, unknown>;
}

/** A value that came from a file, for an error message: shown only when it looks like a name, number or list of
 * them (letters, digits, `_ . , - + [ ] "` and spaces; at most `max` characters), else described, never quoted —
 * so a file that is really /etc/passwd or a key never has its bytes repeated in an error. */
export function excerpt(value: unknown, max = 40): string {
  let s: string;
  try {
    s = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    s = String(value);
  }
  if (!/^[\w .,+\-[\]"]*$/.test(s)) return `(a ${Array.isArray(value) ? 'list' : typeof value} with other characters, not shown)`;
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** What a path is, following links: 'file', 'dir', 'other' (FIFO, device, socket, a dangling or looping link — a
 * name that is there but cannot be read, so a reader refuses it rather than acting as if it were absent) or
 * 'missing'. */
export function pathKind(p: string): 'file' | 'dir' | 'other' | 'missing' {
  try {
    const st = fs.statSync(p);
    return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
  } catch {
    try {
      fs.lstatSync(p);
      return 'other';
    } catch {
      return 'missing';
    }
  }
}

export const isDirectory = (p: string): boolean => pathKind(p) === 'dir';
/** The size in bytes of what `p` names (links followed), or undefined when it cannot be stat'ed. */
export function sizeOf(p: string): number | undefined {
  try {
    return fs.statSync(p).size;
  } catch {
    return undefined;
  }
}
export const exists = (p: string): boolean => pathKind(p) !== 'missing';

/** Names in a folder with what each is (links followed); unreadable folders are refused with `code`. */
export function listFolder(dir: string, code: ErrorCode, what = 'folder'): { name: string; kind: ReturnType<typeof pathKind> }[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    throw fileError(err, code, `cannot list the ${what}`, dir);
  }
  return names.sort().map((name) => ({ name, kind: pathKind(path.join(dir, name)) }));
}

/** A regular file opened for reads at offsets (a safetensors header before its tensors); close it with `close`. */
export function openForReads(file: string, o: ReadOptions): { opened: OpenedFile; read: (length: number, position: number) => Uint8Array; close: () => void } {
  if (o.within) requireInside(o.within, file, o.code, o.what);
  const opened = openRegular(file, o.code, o.what);
  if (opened.size > o.maxBytes) {
    closeQuietly(opened);
    throw new OtfuseError(o.code, `the ${o.what} is ${opened.size} bytes, more than the ${o.maxBytes} this reader accepts`, { file });
  }
  return { opened, read: (length, position) => readExactly(opened, length, position, o.code, o.what), close: () => closeQuietly(opened) };
}
