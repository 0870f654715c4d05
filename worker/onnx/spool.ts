// An append-only temp file for large intermediate values kept out of memory (transport maps, the refit's Gram
// matrices, aligned weights, the capture's cached streams): created in the temp folder on first use and unlinked at once where the OS allows — the descriptor
// keeps it readable and nothing is left behind even when the process is killed; release() closes (and, where the
// unlink was refused, removes) it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OtfuseError } from '../errors';
import { tempPathFor } from './atomic';
import { describeErrno } from './files';

export class Spool {
  private file?: { path: string; fd: number; size: number };

  /** `name`: the temp file's base name, e.g. 'otfuse-maps.spool'. */
  constructor(private readonly name: string) {}

  /** Appends the bytes; returns their offset. A full or unwritable temp folder is an IO error that names it. */
  append(bytes: Uint8Array): number {
    const target = this.file?.path ?? tempPathFor(path.join(os.tmpdir(), this.name));
    try {
      if (!this.file) {
        this.file = { path: target, fd: fs.openSync(target, 'w+'), size: 0 };
        try {
          fs.unlinkSync(target);
        } catch {
          /* Windows: removed by release() */
        }
      }
      const at = this.file.size;
      let w = 0;
      while (w < bytes.length) w += fs.writeSync(this.file.fd, bytes, w, bytes.length - w, at + w);
      this.file.size += bytes.length;
      return at;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (!e?.code) throw err;
      throw new OtfuseError(
        'IO',
        `cannot write the temp file ${target} (${(bytes.length / 2 ** 20).toFixed(1)} MiB more after ${((this.file?.size ?? 0) / 2 ** 20).toFixed(1)} MiB): ${describeErrno(e)} (${e.code}); free space in ${path.dirname(target)} or set TMPDIR to a folder with room`,
        { file: target },
      );
    }
  }

  /** Appends a typed array's bytes (read back with readArray); returns their offset. */
  appendArray(values: ArrayBufferView): number {
    return this.append(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }

  /** A fresh array of `length` elements from the bytes appendArray put at `offset`. */
  readArray<T extends ArrayBufferView>(make: new (length: number) => T, length: number, offset: number, what: string): T {
    const out = new make(length);
    this.readInto(new Uint8Array(out.buffer, out.byteOffset, out.byteLength), offset, what);
    return out;
  }

  /** Fills `into` with the bytes at `offset`; `what` names them in the error if the file ends early. */
  readInto(into: Uint8Array, offset: number, what: string): void {
    let r = 0;
    while (r < into.length) {
      const got = this.file ? fs.readSync(this.file.fd, into, r, into.length - r, offset + r) : 0;
      if (got <= 0) throw new OtfuseError('INTERNAL', `the ${this.name} file ended early at ${what}`);
      r += got;
    }
  }

  release(): void {
    if (!this.file) return;
    try {
      fs.closeSync(this.file.fd);
    } catch {
      /* already closed */
    }
    fs.rmSync(this.file.path, { force: true });
    this.file = undefined;
  }
}
