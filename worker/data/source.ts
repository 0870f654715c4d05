// Random-access byte sources for datasets, so that no reader ever holds a whole (possibly huge or hostile) file:
// a slice of a regular file read with pread, and a compressed stream (raw deflate in a .npz, gzip for IDX)
// inflated incrementally. Sequential reads (evaluation, activation capture) stream with memory bounded by one
// read plus one inflate step; the first backward read (shuffled training) spills the stream once — to memory
// when small, else to an unlinked temporary file — and reads from there.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Gunzip, Inflate } from 'fflate';
import { OtfuseError } from '../errors';
import { OpenedFile, closeQuietly, describeErrno, openRegular, readExactly } from '../onnx/files';

export interface ByteSource {
  /** Bytes available (for a compressed stream: the size its container declares). */
  readonly size: number;
  /** Exactly `length` bytes from `position` (a fresh, aligned buffer). */
  read(position: number, length: number): Uint8Array;
  close(): void;
}

/** Spilled streams up to this size stay in memory; larger ones go to a temporary file. */
export const SPILL_IN_MEMORY_BYTES = 64 * 2 ** 20;
/** Compressed bytes pushed per inflate step: deflate expands at most ~1032×, so one step yields ≤ ~17 MB. */
const COMPRESSED_STEP = 16 * 1024;

/** A byte range of a regular file. */
export class FileSlice implements ByteSource {
  constructor(
    private readonly file: OpenedFile,
    private readonly start: number,
    readonly size: number,
    private readonly label: string,
    private readonly owned = false,
  ) {
    if (start < 0 || start + size > file.size)
      throw new OtfuseError('BAD_DATA', `${label}: ${size} bytes at offset ${start} do not fit the file (${file.size} bytes; truncated?)`, { file: file.file });
  }

  static open(file: string, what: string): FileSlice {
    const opened = openRegular(file, 'BAD_DATA', what);
    return new FileSlice(opened, 0, opened.size, what, true);
  }

  read(position: number, length: number): Uint8Array {
    if (position < 0 || length < 0 || position + length > this.size) {
      throw new OtfuseError('BAD_DATA', `${this.label}: ${length} bytes at ${position} are past its end (${this.size} bytes; truncated?)`, {
        file: this.file.file,
      });
    }
    return readExactly(this.file, length, this.start + position, 'BAD_DATA', this.label);
  }

  close(): void {
    if (this.owned) closeQuietly(this.file);
  }
}

type Inflater = { ondata: (chunk: Uint8Array, final: boolean) => void; push(chunk: Uint8Array, final?: boolean): void };

/** A deflate or gzip stream read from a compressed byte source, exposed as random access (see the header). */
export class InflatedSource implements ByteSource {
  private inflater!: Inflater;
  private consumed = 0;
  private finished = false;
  private chunks: Uint8Array[] = [];
  /** Absolute output position of chunks[0]. */
  private chunkStart = 0;
  private produced = 0;
  private spilled?: ByteSource;

  /** `size` is what the container declares; reads past what the stream really holds fail as truncated. */
  constructor(
    private readonly compressed: ByteSource,
    readonly format: 'deflate' | 'gzip',
    public size: number,
    private readonly label: string,
    private readonly file: string,
  ) {
    this.restart();
  }

  private restart(): void {
    this.chunks = [];
    this.chunkStart = 0;
    this.produced = 0;
    this.consumed = 0;
    this.finished = false;
    const onData = (chunk: Uint8Array, final: boolean) => {
      if (chunk.length) {
        this.chunks.push(chunk);
        this.produced += chunk.length;
      }
      if (final) this.finished = true;
    };
    this.inflater = this.format === 'gzip' ? new Gunzip(onData) : new Inflate(onData);
  }

  /** Inflates one more step; false when the stream has ended. */
  private pump(): boolean {
    if (this.finished) return false;
    const length = Math.min(COMPRESSED_STEP, this.compressed.size - this.consumed);
    const chunk = this.compressed.read(this.consumed, length);
    this.consumed += length;
    try {
      this.inflater.push(chunk, this.consumed >= this.compressed.size);
    } catch (err) {
      throw new OtfuseError('BAD_DATA', `${this.label}: corrupt compressed data (${(err as Error).message})`, { file: this.file });
    }
    if (this.consumed >= this.compressed.size) this.finished = true;
    return true;
  }

  read(position: number, length: number): Uint8Array {
    if (this.spilled) return this.spilled.read(position, length);
    if (position < 0 || length < 0 || position + length > this.size) {
      throw new OtfuseError('BAD_DATA', `${this.label}: ${length} bytes at ${position} are past its declared size (${this.size} bytes)`, { file: this.file });
    }
    if (position < this.chunkStart) {
      this.spill();
      return this.spilled!.read(position, length);
    }
    // Drop what lies wholly before `position` (sequential readers never come back to it).
    while (this.chunks.length && this.chunkStart + this.chunks[0].length <= position) {
      this.chunkStart += this.chunks[0].length;
      this.chunks.shift();
    }
    while (this.produced < position + length) {
      if (!this.pump())
        throw new OtfuseError(
          'BAD_DATA',
          `${this.label}: the compressed stream ends after ${this.produced} bytes, but ${this.size} are declared (truncated?)`,
          { file: this.file },
        );
      while (this.chunks.length > 1 && this.chunkStart + this.chunks[0].length <= position) {
        this.chunkStart += this.chunks[0].length;
        this.chunks.shift();
      }
    }
    const out = new Uint8Array(length);
    let p = this.chunkStart;
    for (const c of this.chunks) {
      const from = Math.max(position, p);
      const to = Math.min(position + length, p + c.length);
      if (to > from) out.set(c.subarray(from - p, to - p), from - position);
      p += c.length;
      if (p >= position + length) break;
    }
    return out;
  }

  /** Inflates the whole stream once into memory (small) or an unlinked temporary file (large). */
  private spill(): void {
    this.restart();
    if (this.size <= SPILL_IN_MEMORY_BYTES) {
      const whole = new Uint8Array(this.size);
      let at = 0;
      while (at < this.size) {
        if (!this.chunks.length && !this.pump()) break;
        const c = this.chunks.shift();
        if (!c) continue;
        const n = Math.min(c.length, this.size - at);
        whole.set(c.subarray(0, n), at);
        at += n;
      }
      if (at < this.size)
        throw new OtfuseError('BAD_DATA', `${this.label}: the compressed stream ends after ${at} bytes, but ${this.size} are declared (truncated?)`, {
          file: this.file,
        });
      this.spilled = new MemorySource(whole);
    } else {
      this.spilled = spillToTempFile(this, this.size, this.label, this.file);
    }
    this.chunks = [];
  }

  /** Next chunk of the stream in order (used by the file spill). */
  nextChunk(): Uint8Array | undefined {
    while (!this.chunks.length) if (!this.pump()) return undefined;
    return this.chunks.shift();
  }

  close(): void {
    this.spilled?.close();
    this.compressed.close();
    this.chunks = [];
  }
}

class MemorySource implements ByteSource {
  constructor(private readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.length;
  }
  read(position: number, length: number): Uint8Array {
    return this.bytes.slice(position, position + length);
  }
  close(): void {
    /* garbage-collected */
  }
}

function spillToTempFile(stream: InflatedSource, size: number, label: string, file: string): ByteSource {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-spill-'));
  const tmp = path.join(dir, 'data');
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'w+', 0o600);
  } finally {
    // Unlinked at once: the data lives while the descriptor is open and vanishes even if the process is killed.
    fs.rmSync(dir, { recursive: true, force: true });
  }
  let at = 0;
  try {
    for (let c = stream.nextChunk(); c && at < size; c = stream.nextChunk()) {
      const n = Math.min(c.length, size - at);
      fs.writeSync(fd, c, 0, n, at);
      at += n;
    }
  } catch (err) {
    fs.closeSync(fd);
    if (err instanceof OtfuseError) throw err;
    // A full or unwritable temp folder is an IO error naming the temp file (the dataset is fine).
    const e = err as NodeJS.ErrnoException;
    throw new OtfuseError(
      'IO',
      `cannot write the temp file ${tmp} (${label} of ${file}: ${(size / 2 ** 20).toFixed(1)} MiB decompressed, ${(at / 2 ** 20).toFixed(1)} MiB written): ${describeErrno(e)}${e?.code ? ` (${e.code})` : ''}; free space in ${os.tmpdir()} or set TMPDIR to a folder with room`,
      { file: tmp },
    );
  }
  if (at < size) {
    fs.closeSync(fd);
    throw new OtfuseError('BAD_DATA', `${label}: the compressed stream ends after ${at} bytes, but ${size} are declared (truncated?)`, { file });
  }
  return new FileSlice({ fd, size, file, stat: fs.fstatSync(fd) }, 0, size, label, true);
}
