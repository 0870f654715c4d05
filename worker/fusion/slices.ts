// Reading and writing a linear layer's parameters where the layer may be a slice of a packed initializer
// (LinearRef.slice: fused QKV, nn.MultiheadAttention's in_proj). Values are moved in "canonical" form — weight
// [out, in], bias [out], float64 — and a ParamSink assembles whole initializers (in the anchor's storage layout)
// from the pieces the alignment writes, checking that every element of a packed initializer is written.
import { OtfuseError } from '../errors';
import type { LinearRef } from '../graph/analyze';
import { transpose } from './maps';
import { Spool } from '../onnx/spool';

/** Elements of a row-major tensor: `outer` runs of `width` values, run r starting at r·stride + offset. */
export interface Region {
  outer: number;
  stride: number;
  offset: number;
  width: number;
}

export interface StoredParam {
  dims: number[];
  data: ArrayLike<number>;
}

function checkSlice(l: LinearRef, dims: number[]): number {
  const s = l.slice!;
  if (dims.length !== 2) throw new OtfuseError('INTERNAL', `packed weight '${l.weight}' of '${l.node}' is not 2-D`);
  const total = l.outIn ? dims[0] : dims[1];
  const inner = l.outIn ? dims[1] : dims[0];
  if (!Number.isInteger(s.offset) || !Number.isInteger(s.size) || s.offset < 0 || s.size !== l.outDim || s.offset + s.size > total || inner !== l.inDim) {
    throw new OtfuseError(
      'INTERNAL',
      `slice [${s.offset}, ${s.offset + s.size}) of '${l.node}' does not fit its packed weight '${l.weight}' [${dims}] (${l.outIn ? 'out, in' : 'in, out'}; layer ${l.outDim}×${l.inDim})`,
    );
  }
  return total;
}

/** Where the layer's weight lives inside its (packed) initializer; undefined = the whole tensor. */
export function weightRegion(l: LinearRef, dims: number[]): Region | undefined {
  if (!l.slice) return undefined;
  const total = checkSlice(l, dims);
  return l.outIn
    ? { outer: 1, stride: 0, offset: l.slice.offset * l.inDim, width: l.slice.size * l.inDim }
    : { outer: l.inDim, stride: total, offset: l.slice.offset, width: l.slice.size };
}

/** Where the layer's bias lives inside its (packed) bias initializer. */
export function biasRegion(l: LinearRef, length: number): Region | undefined {
  if (!l.slice) return undefined;
  if (l.slice.offset + l.slice.size > length)
    throw new OtfuseError(
      'INTERNAL',
      `slice [${l.slice.offset}, ${l.slice.offset + l.slice.size}) of '${l.node}' does not fit its packed bias '${l.bias}' (${length})`,
    );
  return { outer: 1, stride: 0, offset: l.slice.offset, width: l.slice.size };
}

export function regionSize(r: Region): number {
  return r.outer * r.width;
}

export function readRegion(data: ArrayLike<number>, r?: Region): Float64Array {
  if (!r) return Float64Array.from(data);
  const out = new Float64Array(r.outer * r.width);
  for (let o = 0; o < r.outer; o++) {
    const src = o * r.stride + r.offset;
    for (let c = 0; c < r.width; c++) out[o * r.width + c] = data[src + c];
  }
  return out;
}

export function writeRegion(target: Float64Array | Float32Array, values: ArrayLike<number>, r?: Region, written?: Uint8Array): void {
  if (!r) {
    target.set(values);
    written?.fill(1);
    return;
  }
  for (let o = 0; o < r.outer; o++) {
    const dst = o * r.stride + r.offset;
    for (let c = 0; c < r.width; c++) {
      target[dst + c] = values[o * r.width + c];
      if (written) written[dst + c] = 1;
    }
  }
}

/** The layer's weight as [out, in] float64 (its slice only, when packed). */
export function readWeight(p: StoredParam, l: LinearRef): Float64Array {
  const v = readRegion(p.data, weightRegion(l, p.dims));
  return l.outIn ? v : transpose(v, l.inDim, l.outDim);
}

export function readBias(p: StoredParam, l: LinearRef): Float64Array {
  return readRegion(p.data, biasRegion(l, p.data.length));
}

/** [out, in] → the layer's storage layout (the values of its region, in order). */
export function toStorage(W: Float64Array, l: LinearRef): Float64Array {
  return l.outIn ? W : transpose(W, l.outDim, l.inDim);
}

/** Whole initializers by name, as a ParamSink hands them over (a Map, or values spooled to a temp file). */
export interface ParamValues {
  get(name: string): Float32Array | undefined;
  /** Frees what the values hold (a spool's file); no-op for a Map. */
  release?(): void;
}

/**
 * Collects aligned values per initializer: whole tensors or regions of packed ones. Writing the same elements
 * twice must give the same values (a tied or shared parameter aligned consistently), and `finish` checks every
 * element of every initializer was written. Values are kept in float32, the precision the model stores (the
 * products that make them run in float64). With a `spool`, each initializer leaves memory for the spool's temp
 * file as soon as all its elements are written (a ViT-B's aligned copy, 343 MB, is read back tensor by tensor by
 * the average and the refit instead of being held through the alignment).
 */
export class ParamSink {
  private readonly values = new Map<string, Float32Array>();
  private readonly written = new Map<string, Uint8Array>();
  private readonly spooled = new Map<string, { offset: number; length: number }>();

  constructor(
    private readonly sizeOf: (name: string) => number,
    private readonly file?: string,
    private readonly spool?: Spool,
  ) {}

  put(name: string, v: ArrayLike<number>, region?: Region): void {
    const size = this.sizeOf(name);
    const expect = region ? regionSize(region) : size;
    if (v.length !== expect) throw new OtfuseError('INTERNAL', `aligned '${name}' has ${v.length} values, the anchor needs ${expect}`);
    let target = this.values.get(name);
    let mask = this.written.get(name);
    const back = this.spooled.get(name);
    if (back && !target) {
      // Written in full before (a tied parameter): back into memory for the consistency check below.
      target = readSpooled(this.spool!, back, name);
      mask = new Uint8Array(size).fill(1);
      this.values.set(name, target);
      this.written.set(name, mask);
      this.spooled.delete(name);
    }
    if (!target || !mask) {
      target = new Float32Array(size);
      mask = new Uint8Array(size);
      this.values.set(name, target);
      this.written.set(name, mask);
    } else {
      // A shared (tied) initializer must come out the same from every role that uses it.
      const before = readRegion(target, region),
        had = readRegion(mask, region);
      for (let i = 0; i < before.length; i++) {
        if (had[i] && Math.abs(before[i] - v[i]) > 1e-6 * (1 + Math.abs(before[i]))) {
          throw new OtfuseError('UNSUPPORTED', `parameter '${name}' is shared by layers whose alignments disagree`, { file: this.file });
        }
      }
    }
    writeRegion(target, v, region, mask);
    if (this.spool && mask.indexOf(0) < 0) this.toSpool(name, target);
  }

  private toSpool(name: string, target: Float32Array): void {
    this.spooled.set(name, { offset: this.spool!.appendArray(target), length: target.length });
    this.values.delete(name);
    this.written.delete(name);
  }

  has(name: string): boolean {
    return this.values.has(name) || this.spooled.has(name);
  }

  /** Whole initializers; throws when a packed one has elements no slice wrote. */
  finish(): ParamValues {
    this.checkComplete();
    if (!this.spool) return this.values;
    // Complete values still in memory (read back for a consistency check that then failed) go to the spool too.
    for (const [name, target] of [...this.values]) this.toSpool(name, target);
    const spool = this.spool;
    const index = this.spooled;
    return { get: (name) => (index.has(name) ? readSpooled(spool, index.get(name)!, name) : undefined), release: () => spool.release() };
  }

  /** Whole initializers in memory (a sink without a spool). */
  finishInMemory(): Map<string, Float32Array> {
    if (this.spool) throw new OtfuseError('INTERNAL', 'finishInMemory on a spooling ParamSink');
    this.checkComplete();
    return this.values;
  }

  private checkComplete(): void {
    for (const [name, mask] of this.written) {
      const missing = mask.indexOf(0);
      if (missing >= 0)
        throw new OtfuseError('INTERNAL', `packed parameter '${name}': element ${missing} of ${mask.length} is in no layer's slice`, { file: this.file });
    }
  }
}

function readSpooled(spool: Spool, at: { offset: number; length: number }, name: string): Float32Array {
  return spool.readArray(Float32Array, at.length, at.offset, `aligned values of '${name}'`);
}
