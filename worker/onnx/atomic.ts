// Atomic writes: a reader never sees a half-written file, and a failed write leaves nothing behind.
import fs from 'node:fs';
import path from 'node:path';
import { OtfuseError } from '../errors';
import { describeErrno } from './files';

/** A file-system failure while writing `target`, as a documented IO error naming the target (not the temp). */
function writeError(err: unknown, target: string): OtfuseError {
  if (err instanceof OtfuseError) return err;
  const e = err as NodeJS.ErrnoException;
  return new OtfuseError('IO', `cannot write: ${describeErrno(e)}${e?.code ? ` (${e.code})` : ''}`, { file: target });
}

export function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${Date.now().toString(36)}.tmp`);
}

export function writeFileAtomic(target: string, bytes: Uint8Array | string): void {
  writeFileAtomicWith(target, (fd) => fs.writeFileSync(fd, bytes));
}

/** Like writeFileAtomic, for content written piece by piece: `write` gets the temp file's descriptor. */
export function writeFileAtomicWith(target: string, write: (fd: number) => void): void {
  const tmp = tempPathFor(target);
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const fd = fs.openSync(tmp, 'w');
    try {
      write(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
  } catch (err) {
    removeQuietly(tmp);
    throw writeError(err, target);
  }
}

/** Best-effort cleanup that never replaces the error being reported. */
function removeQuietly(p: string): void {
  try {
    fs.rmSync(p, { recursive: true, force: true });
  } catch {
    /* the parent is gone or not a folder */
  }
}
