// The refit's input Gram matrices: which tensors each layer reads, which rows count (padding dropped, the token
// budget's seeded share), the float32-GEMM accumulation into float64, and — for the default path — collection
// during activation capture (a CaptureTap: the parents are run once, by the capture, not again by the refit),
// with finished Grams spooled to a temp file so that only one stage's worth is ever in memory.
import * as ort from 'onnxruntime-node';
import { createOrtSession } from '../runtime/session';
import { OtfuseError } from '../errors';
import type { OnnxModel } from '../onnx/model';
import type { LinearRef } from '../graph/analyze';
import { Spool } from '../onnx/spool';
import { intAttr, productModel } from '../runtime/opmodel';
import { seededRandom } from '../random';
import type { CaptureTap } from './activations';
import type { TMap } from './maps';

/** Kept rows per Gram product in the capture taps (at most this plus one batch's rows are held per tensor). */
const FLUSH_ROWS = 4096;

/** Input maps with more entries than this wait in the spool (as float32) until the refit reads them. */
const HOLD_ABOVE_ENTRIES = 1 << 18;

/** One linear layer of the schedule, the same position in every model (anchor first). */
export interface RefitLayer {
  name: string;
  refs: LinearRef[];
}

/** A distinct input tensor of some refit layers: its name in each model (anchor first) and widths. */
export interface GramEntry {
  /** The anchor's tensor name (the key everything is stored under). */
  key: string;
  tensors: string[];
  da: number;
  db: number[];
}

/** The tensor a linear layer reads (its MatMul/Gemm node's first input). */
export function inputTensor(model: OnnxModel, l: LinearRef): string {
  const node = model.nodes.find((n) => n.name === l.node);
  const x = node?.input?.[0];
  if (!x) throw new OtfuseError('INTERNAL', `refit: cannot find the input of layer '${l.node}'`, { file: model.file, node: l.node });
  return x;
}

/** The distinct input tensors of `layers`, in order of first use. */
export function gramEntries(models: OnnxModel[], layers: RefitLayer[]): GramEntry[] {
  const entries: GramEntry[] = [];
  for (const l of layers) {
    const tensors = l.refs.map((r, k) => inputTensor(models[k], r));
    if (entries.some((e) => e.key === tensors[0])) continue;
    entries.push({ key: tensors[0], tensors, da: l.refs[0].inDim, db: l.refs.map((r) => r.inDim) });
  }
  return entries;
}

/** Rows of a [rows × d] activation block (optionally a subset), with a ones column appended: [rows × (d+1)] float32. */
export function augmentRows(A: Float32Array, d: number, rows: readonly number[] | null, nRows: number): { X: Float32Array; rows: number } {
  const count = rows ? rows.length : nRows;
  const X = new Float32Array(count * (d + 1));
  for (let r = 0; r < count; r++) {
    const src = (rows ? rows[r] : r) * d;
    X.set(A.subarray(src, src + d), r * (d + 1));
    X[r * (d + 1) + d] = 1;
  }
  return { X, rows: count };
}

/** Below this many multiply-adds a product stays in float64 JS; above, one float32 Gemm in ONNX Runtime. */
const ORT_PRODUCT_THRESHOLD = 1_000_000;

function gemmTransAModel(): Uint8Array {
  const cross = { opType: 'Gemm', name: 'cross', input: ['A', 'B'], output: ['C'], attribute: [intAttr('transA', 1)] };
  return productModel('cross', [cross], { A: ['r', 'a'], B: ['r', 'b'] }, { C: ['a', 'b'] });
}

/**
 * From this many columns a Gram XᵀX is computed by column blocks, the blocks on and above the diagonal only (it is
 * symmetric): 2 blocks (¾ of the multiply-adds) from gramBlockMin columns, 4 (⅝) from 4·gramBlockMin.
 */
let gramBlockMin = 512;

/** Sets the width from which Grams go by column blocks (tests use small ones); returns the previous. */
export function configureGramBlocks(minWidth: number): number {
  const previous = gramBlockMin;
  gramBlockMin = minWidth;
  return previous;
}

/** Column cuts of a Gram's blocks: [0, width] (one block), or 2 or 4 near-equal blocks. */
export function gramCuts(width: number): number[] {
  const nb = width >= 4 * gramBlockMin ? 4 : width >= gramBlockMin ? 2 : 1;
  return Array.from({ length: nb + 1 }, (_, b) => Math.round((b * width) / nb));
}

/** Accumulates AᵀB of augmented row blocks into float64 C: per batch in float32 ONNX Runtime (large) or float64 JS (small). */
export class CrossProducts {
  /** Contiguous copies of X's column blocks (grown as needed, reused). */
  private scratch = new Float32Array(0);

  private constructor(private readonly session: ort.InferenceSession | undefined) {}

  static async create(): Promise<CrossProducts> {
    try {
      return new CrossProducts(await createOrtSession(gemmTransAModel(), { memArena: false }));
    } catch {
      return new CrossProducts(undefined);
    }
  }

  async add(C: Float64Array, A: Float32Array, a: number, B: Float32Array, b: number, rows: number): Promise<void> {
    if (this.session && rows * a * b >= ORT_PRODUCT_THRESHOLD) {
      const out = await this.session.run({ A: new ort.Tensor('float32', A, [rows, a]), B: new ort.Tensor('float32', B, [rows, b]) });
      const P = out.C.data as Float32Array;
      for (let i = 0; i < P.length; i++) C[i] += P[i];
      return;
    }
    for (let r = 0; r < rows; r++) {
      const ao = r * a,
        bo = r * b;
      for (let i = 0; i < a; i++) {
        const x = A[ao + i];
        if (x === 0) continue;
        const ci = i * b;
        for (let j = 0; j < b; j++) C[ci + j] += x * B[bo + j];
      }
    }
  }

  /**
   * G += XᵀX for X of `rows` rows × `width` columns (row-major). Large ones by column blocks (gramCuts), only the
   * blocks on and above the diagonal: G's blocks below it are then stale until symmetrize(G) (call it once G is
   * complete).
   */
  async addGram(G: Float64Array, X: Float32Array, width: number, rows: number): Promise<void> {
    const cut = gramCuts(width);
    if (!this.session || cut.length === 2 || rows * width * width < ORT_PRODUCT_THRESHOLD) return this.add(G, X, width, X, width, rows);
    if (this.scratch.length < rows * width) this.scratch = new Float32Array(rows * width);
    for (let b = 0; b + 1 < cut.length; b++) {
      const w = cut[b + 1] - cut[b];
      const B = this.scratch.subarray(rows * cut[b], rows * cut[b + 1]);
      for (let r = 0; r < rows; r++) B.set(X.subarray(r * width + cut[b], r * width + cut[b + 1]), r * w);
    }
    await this.addGramBlocks(G, this.scratch, rows, width, rows);
  }

  /**
   * addGram for X stored by column blocks: block b (columns gramCuts(width)[b] to [b+1], w_b wide) is a row-major
   * rows × w_b matrix at offset capacity·cut[b] of `blocked` (capacity ≥ rows: a buffer filled up to `rows`).
   */
  async addGramBlocks(G: Float64Array, blocked: Float32Array, capacity: number, width: number, rows: number): Promise<void> {
    const cut = gramCuts(width);
    const blocks = Array.from({ length: cut.length - 1 }, (_, b) => {
      const w = cut[b + 1] - cut[b];
      return { B: blocked.subarray(capacity * cut[b], capacity * cut[b] + rows * w), w, c0: cut[b] };
    });
    if (!this.session || rows * width * width < ORT_PRODUCT_THRESHOLD) {
      // small: float64 JS over the upper blocks
      for (const a of blocks)
        for (const b of blocks) {
          if (b.c0 < a.c0) continue;
          for (let r = 0; r < rows; r++)
            for (let i = 0; i < a.w; i++) {
              const x = a.B[r * a.w + i];
              if (x === 0) continue;
              const g = (a.c0 + i) * width + b.c0;
              for (let j = 0; j < b.w; j++) G[g + j] += x * b.B[r * b.w + j];
            }
        }
      return;
    }
    for (let i = 0; i < blocks.length; i++) {
      for (let j = i; j < blocks.length; j++) {
        const a = blocks[i],
          b = blocks[j];
        const out = await this.session.run({ A: new ort.Tensor('float32', a.B, [rows, a.w]), B: new ort.Tensor('float32', b.B, [rows, b.w]) });
        const P = out.C.data as Float32Array;
        for (let r = 0; r < a.w; r++) {
          const g = (a.c0 + r) * width + b.c0,
            p = r * b.w;
          for (let c = 0; c < b.w; c++) G[g + c] += P[p + c];
        }
      }
    }
  }

  /** Makes G (width × width) exactly symmetric from its upper triangle (after addGram). */
  static symmetrize(G: Float64Array, width: number): void {
    const T = 64;
    for (let i0 = 0; i0 < width; i0 += T)
      for (let j0 = 0; j0 <= i0; j0 += T)
        for (let i = i0; i < Math.min(width, i0 + T); i++) for (let j = j0; j < Math.min(i, j0 + T); j++) G[i * width + j] = G[j * width + i];
  }

  async release(): Promise<void> {
    await this.session?.release();
  }
}

/**
 * Which rows of a captured block enter the Grams: padding tokens (text models) never; above the token budget a
 * seeded share budget / candidates of the rest, one draw per row in data order (so every model, fed the same
 * samples in the same order, keeps the same rows whatever its batch size).
 */
export class RowPicker {
  private readonly share: (number | undefined)[];
  private readonly pick: (() => number)[];

  constructor(
    entries: number,
    private readonly budget: number,
    seed: number,
    /** Candidate rows of an entry: real tokens when masked, else samples × tokens. */
    private readonly candidates: (masked: boolean, tokens: number) => number,
  ) {
    this.share = Array.from({ length: entries }, () => undefined);
    this.pick = Array.from({ length: entries }, (_, ei) => seededRandom(seed * 1000003 + ei + 1));
  }

  /** Rows (null: all n) of a block of n rows with `tokens` tokens per sample and the batch's token mask. */
  rows(ei: number, n: number, tokens: number, mask: ArrayLike<boolean | number> | undefined): number[] | null {
    let rows: number[] | null = null;
    const masked = !!mask && tokens > 1 && mask.length === n;
    if (masked) {
      rows = [];
      for (let r = 0; r < n; r++) if (mask![r]) rows.push(r);
    }
    if (this.share[ei] === undefined) {
      const c = this.candidates(masked, tokens);
      this.share[ei] = this.budget > 0 && c > this.budget ? this.budget / c : 1;
    }
    const share = this.share[ei]!;
    if (share < 1) rows = (rows ?? Array.from({ length: n }, (_, i) => i)).filter(() => this.pick[ei]() < share);
    return rows;
  }
}

/** The geometry of a captured float tensor: feature width, rows, tokens per sample (1 for 2-D). */
export function blockOf(dims: number[], length: number): { d: number; n: number; tokens: number } {
  const d = dims[dims.length - 1];
  return { d, n: length / d, tokens: dims.length === 3 ? dims[1] : 1 };
}

/**
 * Grams [X,1]ᵀ[X,1] of each model's refit inputs, collected from the activation capture through one CaptureTap per
 * model; a finished tensor's Gram goes to a float32 spool file (the partial products are float32 GEMMs already),
 * so memory holds only the Grams of the stage being captured. `read` gives them back as float64.
 */
export class CaptureGrams {
  readonly entries: GramEntry[];
  /** Seconds spent in the taps (row selection + Gram products), part of the capture's time. */
  seconds = 0;
  /** False when some input tensor could not be tapped: the refit must run its own pass. */
  complete = true;
  private products?: CrossProducts;
  private readonly spool = new Spool('otfuse-grams.spool');
  private readonly index = new Map<string, { offset: number; length: number; rows: number }>();
  /** Free row buffers of the taps. */
  private pool: Float32Array[] = [];
  /** Maps set aside: original → stub (dedup), stub → where its float32 plan lies in the spool. */
  private readonly held = new WeakMap<TMap, TMap>();
  private readonly heldAt = new WeakMap<TMap, { offset: number; length: number }>();

  constructor(
    private readonly models: OnnxModel[],
    layers: RefitLayer[],
    private readonly options: { samples: number; datasetSize: number; tokenBudget: number; tokenSeed: number },
  ) {
    this.entries = gramEntries(models, layers);
  }

  /** The tap for model k (anchor: 0). */
  tap(k: number): CaptureTap {
    const entries = this.entries;
    const byTensor = new Map(entries.map((e, ei) => [e.tensors[k], ei]));
    const total = Math.min(this.options.samples, this.options.datasetSize);
    let realTokens: number | undefined;
    const picker = new RowPicker(entries.length, this.options.tokenBudget, this.options.tokenSeed, (masked, tokens) =>
      masked && realTokens !== undefined ? realTokens : total * tokens,
    );
    // Kept rows wait in a buffer of FLUSH_ROWS until it is full: fewer, larger GEMMs, fewer float64 additions of
    // the (d+1)² partial product, and no per-batch allocation (buffers are pooled by width across stages and models).
    const acc = new Map<number, { G: Float64Array; rows: number; buf: Float32Array; pending: number; width: number }>();
    const flush = async (a: { G: Float64Array; buf: Float32Array; pending: number; width: number }) => {
      if (!a.pending) return;
      this.products ??= await CrossProducts.create();
      await this.products.addGramBlocks(a.G, a.buf, FLUSH_ROWS, a.width, a.pending);
      a.pending = 0;
    };
    return {
      tensors: [...byTensor.keys()],
      untapped: () => {
        this.complete = false;
      },
      batch: async (tensor, data, dims, _start, _count, mask, real) => {
        const t0 = performance.now();
        realTokens ??= real;
        const ei = byTensor.get(tensor)!;
        const { d, n, tokens } = blockOf(dims, data.length);
        if (d !== entries[ei].db[k]) throw new OtfuseError('MISMATCH', `refit: '${tensor}' has width ${d}, the layer takes ${entries[ei].db[k]}`);
        const rows = picker.rows(ei, n, tokens, mask);
        const width = d + 1;
        let a = acc.get(ei);
        if (!a) acc.set(ei, (a = { G: new Float64Array(width * width), rows: 0, buf: this.borrow(width), pending: 0, width }));
        const count = rows ? rows.length : n;
        a.rows += count;
        // the buffer holds the augmented rows [x, 1] by column blocks (addGramBlocks): block b's rows are
        // cut[b+1] − cut[b] wide, at FLUSH_ROWS·cut[b]
        const cut = gramCuts(width);
        for (let r = 0; r < count; r++) {
          const src = (rows ? rows[r] : r) * d;
          for (let b = 0; b + 1 < cut.length; b++) {
            const w = cut[b + 1] - cut[b],
              at = FLUSH_ROWS * cut[b] + a.pending * w;
            a.buf.set(data.subarray(src + cut[b], src + Math.min(cut[b + 1], d)), at);
            if (cut[b + 1] === width) a.buf[at + w - 1] = 1;
          }
          if (++a.pending === FLUSH_ROWS) await flush(a);
        }
        this.seconds += (performance.now() - t0) / 1000;
      },
      stageDone: async (tensors) => {
        const t0 = performance.now();
        for (const t of tensors) {
          const ei = byTensor.get(t)!;
          const a = acc.get(ei);
          if (!a) continue;
          await flush(a);
          CrossProducts.symmetrize(a.G, a.width);
          this.put(k, entries[ei].key, a.G, a.rows);
          this.pool.push(a.buf);
          acc.delete(ei);
        }
        this.seconds += (performance.now() - t0) / 1000;
      },
    };
  }

  /** A row buffer of FLUSH_ROWS × width floats, from the pool when one of that width is free. */
  private borrow(width: number): Float32Array {
    const i = this.pool.findIndex((b) => b.length === FLUSH_ROWS * width);
    return i >= 0 ? this.pool.splice(i, 1)[0] : new Float32Array(FLUSH_ROWS * width);
  }

  private put(k: number, key: string, G: Float64Array, rows: number): void {
    this.index.set(`${k}/${key}`, { ...this.append(G), rows });
  }

  /** Appends values to the spool as float32. */
  private append(v: Float64Array): { offset: number; length: number } {
    return { offset: this.spool.appendArray(Float32Array.from(v)), length: v.length };
  }

  private load(at: { offset: number; length: number }, what: string): Float64Array {
    return Float64Array.from(this.spool.readArray(Float32Array, at.length, at.offset, what));
  }

  /** Sets a large map aside until the refit reads it (float32, like maps.safetensors); returns what to keep. */
  holdMap(map: TMap): TMap {
    if (map.plan.length <= HOLD_ABOVE_ENTRIES) return map;
    let stub = this.held.get(map);
    if (!stub) {
      stub = { n: map.n, m: map.m, plan: new Float64Array(0) };
      this.heldAt.set(stub, this.append(map.plan));
      this.held.set(map, stub);
    }
    return stub;
  }

  /** The full map behind a stub of holdMap (others unchanged). */
  resolveMap(map: TMap): TMap {
    const at = this.heldAt.get(map);
    return at ? { n: map.n, m: map.m, plan: this.load(at, `an input map (${map.n}×${map.m})`) } : map;
  }

  /** Whether every model's Gram of every entry was collected. */
  get ready(): boolean {
    return this.complete && this.models.every((_, k) => this.entries.every((e) => this.index.has(`${k}/${e.key}`)));
  }

  /** Model k's Gram of the entry keyed `key` (its own basis, (d+1)², float64) and the rows it summed. */
  read(k: number, key: string): { G: Float64Array; rows: number } {
    const at = this.index.get(`${k}/${key}`);
    if (!at) throw new OtfuseError('INTERNAL', `refit: no Gram for '${key}' of model ${k}`, { file: this.models[k].file });
    return { G: this.load(at, `'${key}'`), rows: at.rows };
  }

  async release(): Promise<void> {
    await this.products?.release();
    this.products = undefined;
    this.pool = [];
    this.spool.release();
  }
}
