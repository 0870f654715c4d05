// Opening files from a workspace that may be hostile: regular files only (no devices, FIFOs or sockets — a FIFO
// is opened non-blocking so it cannot hang the open), lengths checked against the file before allocating, and
// containment checked on real paths (symlinks resolved), not on path strings.
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, OtfuseError } from '../errors';

/** The largest file read whole into memory (ONNX protobufs cannot exceed 2 GiB anyway). */
export const MAX_WHOLE_FILE_BYTES = 2 ** 31 - 1;

export interface OpenedFile {
  fd: number;
  size: number;
  file: string;
  /** What fstat said when it was opened (identity checks: device, inode, modification time). */
  stat: fs.Stats;
  /** Set once closed: a descriptor number is reused by the next open, so it must never be closed twice. */
  closed?: boolean;
}

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Opens `file` for reading; anything but a regular file is refused with `code`, naming the file. */
export function openRegular(file: string, code: ErrorCode, what = 'file'): OpenedFile {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO without a writer returns at once instead of blocking the process.
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw fileError(err, code, `cannot open ${what}`, file);
  }
  let st: fs.Stats;
  try {
    st = fs.fstatSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    throw fileError(err, code, `cannot stat ${what}`, file);
  }
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw new OtfuseError(code, `the ${what} is ${kindOf(st)}; only regular files are read`, { file });
  }
  return { fd, size: st.size, file, stat: st };
}

/** Reads exactly `length` bytes at `position`, or fails naming the file (a short read means a truncated file). */
export function readExactly(opened: OpenedFile, length: number, position: number, code: ErrorCode, what = 'file'): Uint8Array {
  if (opened.closed) throw new OtfuseError('INTERNAL', `${what}: read after close`, { file: opened.file });
  if (!Number.isSafeInteger(length) || length < 0 || !Number.isSafeInteger(position) || position < 0 || position + length > opened.size) {
    throw new OtfuseError(code, `${what}: ${length} bytes at offset ${position} do not fit the file (${opened.size} bytes; truncated?)`, { file: opened.file });
  }
  const buf = new Uint8Array(length);
  let done = 0;
  try {
    while (done < length) {
      const n = fs.readSync(opened.fd, buf, done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
  } catch (err) {
    throw fileError(err, code, `cannot read ${what}`, opened.file);
  }
  if (done !== length) throw new OtfuseError(code, `${what}: read ${done} of ${length} bytes at offset ${position} (truncated?)`, { file: opened.file });
  return buf;
}

export function closeQuietly(opened: OpenedFile | undefined): void {
  if (!opened || opened.closed) return;
  opened.closed = true;
  try {
    fs.closeSync(opened.fd);
  } catch {
    /* already closed */
  }
}

/** Reads a whole regular file of at most `maxBytes` (checked before allocating). */
export function readRegularFile(file: string, code: ErrorCode, what = 'file', maxBytes = MAX_WHOLE_FILE_BYTES): Uint8Array {
  return readRegularFileAndStat(file, code, what, maxBytes).bytes;
}

/** readRegularFile, with what fstat said of the file it read (the same descriptor: no race between the two). */
export function readRegularFileAndStat(file: string, code: ErrorCode, what = 'file', maxBytes = MAX_WHOLE_FILE_BYTES): { bytes: Uint8Array; stat: fs.Stats } {
  const opened = openRegular(file, code, what);
  try {
    if (opened.size > maxBytes) throw new OtfuseError(code, `the ${what} is ${opened.size} bytes, more than the ${maxBytes} this reader accepts`, { file });
    return { bytes: readExactly(opened, opened.size, 0, code, what), stat: opened.stat };
  } finally {
    closeQuietly(opened);
  }
}

/** The real path of `target` if it lies inside the real folder `dir` (symlinks resolved on both), else undefined. */
export function realPathInside(dir: string, target: string): string | undefined {
  let realDir: string;
  let real: string;
  try {
    realDir = fs.realpathSync(dir);
    real = fs.realpathSync(target);
  } catch {
    return undefined;
  }
  return real !== realDir && real.startsWith(realDir.endsWith(path.sep) ? realDir : realDir + path.sep) ? real : undefined;
}

/** Node error codes in the documented OtfuseError vocabulary, with the file named. */
export function fileError(err: unknown, code: ErrorCode, doing: string, file: string): OtfuseError {
  if (err instanceof OtfuseError) return err;
  const e = err as NodeJS.ErrnoException;
  const reason = describeErrno(e);
  return new OtfuseError(code, `${doing}: ${reason}`, { file });
}

export function describeErrno(e: NodeJS.ErrnoException): string {
  switch (e?.code) {
    case 'ENOENT':
      return 'no such file or folder';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a folder';
    case 'ENOTDIR':
      return 'a part of the path is not a folder';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EROFS':
      return 'the file system is read-only';
    case 'EDQUOT':
      return 'disk quota exceeded';
    case 'ENOTEMPTY':
    case 'EEXIST':
      return 'the target already exists';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    case 'ENAMETOOLONG':
      return 'the path is too long';
    case 'EMFILE':
    case 'ENFILE':
      return 'too many open files';
    case 'ERR_BUFFER_TOO_LARGE':
    case 'ERR_FS_FILE_TOO_LARGE':
      return 'the file is too large to read';
    case 'Z_DATA_ERROR':
    case 'Z_BUF_ERROR':
      return 'corrupt compressed data';
    default:
      return (e?.message ?? String(e)).split('\n')[0];
  }
}
