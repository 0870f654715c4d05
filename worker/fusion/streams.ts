// The staged capture's cache of stage outputs (the residual stream one stage hands the next), batch by batch. A
// ViT-B stream over 200 images is 121 MB per model, and two models' streams were held through the capture of
// every stage; here batches stay in memory up to a byte budget shared by one capture engine and go to a temp
// file (a Spool, unlinked at once) beyond it, read back when their stage is fed. Values come back bit for bit.
import * as ort from 'onnxruntime-node';
import { OtfuseError } from '../errors';
import { Spool } from '../onnx/spool';

/** Bytes of cached stage outputs one capture engine keeps in memory before spooling (the rest: page cache). */
export const STREAM_MEMORY_BYTES = 16 * 1024 * 1024;

type Typed = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Uint16Array;
const ARRAYS: Record<string, new (n: number) => Typed> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  int8: Int8Array,
  bool: Uint8Array,
};

/** What a stage needs to declare a cached tensor as its input. */
export interface StreamInfo {
  type: ort.Tensor.Type;
  dims: readonly number[];
}

type Entry = { tensor: ort.Tensor } | { at: number; length: number; type: ort.Tensor.Type; dims: readonly number[] };

/** The memory budget one engine's stores share. */
export interface StreamBudget {
  limit: number;
  used: number;
}

/**
 * The outputs one stage produced for later stages, per tensor one entry per batch, in memory while the shared
 * budget lasts and spooled beyond it. A batch is dropped once its last reader has been fed; the temp file goes
 * when every tensor of the store has been deleted (or on release).
 */
export class StreamStore {
  private readonly lists = new Map<string, (Entry | undefined)[]>();
  private spool?: Spool;

  constructor(private readonly budget: StreamBudget) {}

  has(name: string): boolean {
    return this.lists.has(name);
  }

  put(name: string, tensor: ort.Tensor): void {
    let list = this.lists.get(name);
    if (!list) this.lists.set(name, (list = []));
    const data = tensor.data as Typed;
    const Ctor = ARRAYS[tensor.type];
    if (!Ctor || this.budget.used + data.byteLength <= this.budget.limit) {
      this.budget.used += data.byteLength;
      list.push({ tensor });
      return;
    }
    this.spool ??= new Spool('otfuse-streams.spool');
    list.push({ at: this.spool.appendArray(data), length: data.length, type: tensor.type, dims: tensor.dims.slice() });
  }

  /** Type and shape of the tensor's first batch. */
  info(name: string): StreamInfo | undefined {
    const e = this.lists.get(name)?.[0];
    if (!e) return undefined;
    return 'tensor' in e ? e.tensor : { type: e.type, dims: e.dims };
  }

  get(name: string, batch: number): ort.Tensor {
    const e = this.lists.get(name)?.[batch];
    if (!e) throw new OtfuseError('INTERNAL', `no cached batch ${batch} of '${name}'`);
    if ('tensor' in e) return e.tensor;
    const data = this.spool!.readArray(ARRAYS[e.type], e.length, e.at, `'${name}' batch ${batch}`);
    return new ort.Tensor(e.type, data as never, e.dims);
  }

  /** Forgets one batch (its last reader has it). */
  drop(name: string, batch: number): void {
    const list = this.lists.get(name);
    const e = list?.[batch];
    if (!list || !e) return;
    if ('tensor' in e) this.budget.used -= (e.tensor.data as Typed).byteLength;
    list[batch] = undefined;
  }

  /** Forgets a tensor; the temp file goes with the store's last tensor. */
  delete(name: string): void {
    const list = this.lists.get(name);
    if (!list) return;
    for (let b = 0; b < list.length; b++) this.drop(name, b);
    this.lists.delete(name);
    if (!this.lists.size) this.release();
  }

  /** Bytes held in memory. */
  get bytes(): number {
    let b = 0;
    for (const list of this.lists.values()) for (const e of list) if (e && 'tensor' in e) b += (e.tensor.data as Typed).byteLength;
    return b;
  }

  release(): void {
    for (const [name, list] of this.lists) for (let b = 0; b < list.length; b++) this.drop(name, b);
    this.lists.clear();
    this.spool?.release();
    this.spool = undefined;
  }
}
