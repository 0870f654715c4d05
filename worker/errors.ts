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

/** Turns anything thrown into an ErrorInfo that can cross a process boundary. */
export function toErrorInfo(err: unknown): ErrorInfo {
  if (err instanceof OtfuseError) return err.toInfo();
  if (err && typeof err === 'object' && 'code' in err && 'message' in err && typeof (err as ErrorInfo).message === 'string') {
    const e = err as ErrorInfo;
    return { code: (e.code as ErrorCode) ?? 'INTERNAL', message: e.message, file: e.file, node: e.node };
  }
  return { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

export function fromErrorInfo(info: ErrorInfo): OtfuseError {
  const e = new OtfuseError(info.code, info.message);
  // The message already carries file/node: keep it as it was formatted on the other side.
  Object.assign(e, { file: info.file, node: info.node, message: info.message });
  return e;
}

/** Raised by long work when its AbortSignal fires. */
export function throwIfCancelled(signal?: AbortSignal): void {
  if (signal?.aborted) throw new OtfuseError('CANCELLED', 'cancelled by the user');
}
