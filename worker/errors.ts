// Errors are values with a code, a message a user can act on, and the file/node they concern.
import type { ErrorCode, ErrorInfo } from './types';

export type { ErrorCode, ErrorInfo };

export class OtfuseError extends Error implements ErrorInfo {
  readonly code: ErrorCode;
  readonly file?: string;
  readonly node?: string;
  constructor(code: ErrorCode, message: string, where: { file?: string; node?: string } = {}) {
    super(OtfuseError.format(message, where));
    this.name = 'OtfuseError';
    this.code = code;
    this.file = where.file;
    this.node = where.node;
  }
  private static format(message: string, where: { file?: string; node?: string }): string {
    const parts: string[] = [];
    if (where.file) parts.push(where.file);
    if (where.node) parts.push(`node '${where.node}'`);
    return parts.length ? `${parts.join(', ')}: ${message}` : message;
  }
  toInfo(): ErrorInfo {
    return { code: this.code, message: this.message, file: this.file, node: this.node };
  }
}

export const ERROR_CODES: readonly ErrorCode[] = [
  'BAD_USAGE',
  'BAD_MODEL',
  'BAD_DATA',
  'UNSUPPORTED',
  'MISMATCH',
  'PROVIDER',
  'NUMERIC',
  'IO',
  'CANCELLED',
  'WORKER_CRASHED',
  'INTERNAL',
];

/** Node's error codes in the documented vocabulary (anything else unexpected is INTERNAL). */
const NODE_CODES: Record<string, { code: ErrorCode; say: string }> = {
  ENOSPC: { code: 'IO', say: 'no space left on the device' },
  EDQUOT: { code: 'IO', say: 'disk quota exceeded' },
  EROFS: { code: 'IO', say: 'the file system is read-only' },
  EACCES: { code: 'IO', say: 'permission denied' },
  EPERM: { code: 'IO', say: 'operation not permitted' },
  EMFILE: { code: 'IO', say: 'too many open files' },
  ENFILE: { code: 'IO', say: 'too many open files' },
  EIO: { code: 'IO', say: 'input/output error' },
  ENOTEMPTY: { code: 'IO', say: 'the target folder already exists and is not empty' },
  EEXIST: { code: 'IO', say: 'the target already exists' },
  EISDIR: { code: 'IO', say: 'is a folder' },
  ENOTDIR: { code: 'IO', say: 'a part of the path is not a folder' },
  ENOENT: { code: 'IO', say: 'no such file or folder' },
  ELOOP: { code: 'IO', say: 'too many levels of symbolic links' },
  ENAMETOOLONG: { code: 'IO', say: 'the path is too long' },
  Z_DATA_ERROR: { code: 'BAD_DATA', say: 'corrupt compressed data' },
  Z_BUF_ERROR: { code: 'BAD_DATA', say: 'truncated compressed data' },
  ERR_BUFFER_TOO_LARGE: { code: 'BAD_DATA', say: 'the data is too large to hold in memory' },
  ERR_FS_FILE_TOO_LARGE: { code: 'BAD_DATA', say: 'the file is too large to read' },
  ERR_STRING_TOO_LONG: { code: 'BAD_DATA', say: 'the text is too large to hold in memory' },
};

/** Turns anything thrown into an ErrorInfo that can cross a process boundary; the code is always documented. */
export function toErrorInfo(err: unknown): ErrorInfo {
  if (err instanceof OtfuseError) return err.toInfo();
  if (err && typeof err === 'object' && 'code' in err && 'message' in err && typeof (err as ErrorInfo).message === 'string') {
    const e = err as ErrorInfo & { path?: string; dest?: string };
    if ((ERROR_CODES as readonly string[]).includes(e.code)) return { code: e.code, message: e.message, file: e.file, node: e.node };
    const known = NODE_CODES[e.code as string];
    if (known) {
      const file = e.file ?? e.path;
      return { code: known.code, message: file ? `${file}: ${known.say} (${e.code})` : `${known.say} (${e.code})`, file };
    }
    const file = e.file ?? e.path;
    return { code: 'INTERNAL', message: `${file && !e.message.includes(file) ? `${file}: ` : ''}${e.message} (${String(e.code)})`, file };
  }
  if (err instanceof RangeError && /Array buffer allocation failed|Invalid typed array length|Invalid array length/.test(err.message)) {
    return { code: 'BAD_DATA', message: `out of memory: ${err.message} (the input declares more data than fits)` };
  }
  return { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

export function fromErrorInfo(info: ErrorInfo): OtfuseError {
  const e = new OtfuseError((ERROR_CODES as readonly string[]).includes(info.code) ? info.code : 'INTERNAL', info.message);
  // The message already carries file/node: keep it as it was formatted on the other side.
  Object.assign(e, { file: info.file, node: info.node, message: info.message });
  return e;
}

/** Raised by long work when its AbortSignal fires. */
export function throwIfCancelled(signal?: AbortSignal): void {
  if (signal?.aborted) throw new OtfuseError('CANCELLED', 'cancelled by the user');
}

/**
 * An error thrown by code that knows no file (OT solvers, cost and linear-algebra kernels) re-thrown by the caller
 * that does: the same code and message, prefixed with what was being done, naming the file (and graph node). An
 * OtfuseError that already names a file, and anything that is not an OtfuseError (reported by toErrorInfo as it
 * is), passes through unchanged; so does CANCELLED.
 */
export function withContext(err: unknown, where: { file: string; node?: string }, doing?: string): unknown {
  if (!(err instanceof OtfuseError) || err.file || err.code === 'CANCELLED') return err;
  const node = err.node ?? where.node;
  const wrapped = new OtfuseError(err.code, doing ? `${doing}: ${err.message}` : err.message, node ? { file: where.file, node } : { file: where.file });
  wrapped.stack = err.stack;
  return wrapped;
}
