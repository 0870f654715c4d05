// From captured batches to the samples a cost compares: each batch normalised to [batch, tokens, …], the tokens
// the token filter keeps (TOKEN_FILTER_STRATEGIES), written neuron-major into a tensor's sink (with its mean
// |activation|), and standardised per neuron at the end.
import type { TokenFilter } from './registry';
import type { TensorView } from '../graph/analyze';

/** tokens: [N, T, D]; nchw: [N, D, h, w] (patch tokens); vector: [N, D] (one value per sample, e.g. a pooler). */
export type Layout = 'tokens' | 'nchw' | 'vector';

export interface CaptureSpec {
  tensor: string;
  layout: Layout;
  /** Stored [tokens, batch, …] (sequence-first); normalised to [batch, tokens, …] on capture. */
  seqFirst?: boolean;
  /** `tensor` names a range of the last axis of another graph tensor (a packed projection's part). */
  view?: TensorView;
}

/** One tensor being written batch by batch into its neuron-major matrix. */
export interface Sink {
  spec: CaptureSpec;
  neurons: number;
  tokens: number;
  /** Sorted flat (sample·tokens + token) indices kept. */
  picks: Int32Array;
  cursor: number;
  X?: Float32Array;
  abs: Float64Array;
  absCount: number;
  withAbs: boolean;
}

export function sinkBytes(m: Map<string, Sink>): number {
  let b = 0;
  for (const s of m.values()) b += s.X?.byteLength ?? 0;
  return b;
}

/** Writes one batch of a tensor into its sink: kept pairs into X (neuron-major), every value into |mean|. */
export function absorb(sink: Sink, c: Float32Array, start: number, count: number): void {
  const { neurons: D, tokens: T, picks, spec } = sink;
  const X = sink.X!,
    S = picks.length;
  // Mean |activation| per neuron over every sample and token (padding included, as before).
  if (!sink.withAbs) {
    // not asked for
  } else if (spec.layout === 'nchw') {
    for (let b = 0; b < count; b++)
      for (let d = 0; d < D; d++) {
        const o = (b * D + d) * T;
        let a = 0;
        for (let t = 0; t < T; t++) a += Math.abs(c[o + t]);
        sink.abs[d] += a;
      }
  } else {
    const abs = sink.abs;
    for (let p = 0; p < c.length; p += D) for (let d = 0; d < D; d++) abs[d] += Math.abs(c[p + d]);
  }
  sink.absCount += count * T;
  const end = (start + count) * T;
  const first = sink.cursor;
  let last = first;
  while (last < S && picks[last] < end) last++;
  // Tiles of 256 picks × 8 neurons: each pick's 8 contiguous values go to 8 rows of X, written in column order.
  // X's rows are S floats apart, and S (the token budget) is often a power of two, so every row maps to the same
  // cache set: more write streams than the cache has ways evict each other (64 streams were 6–8× slower), and
  // 256 picks keep the tile's source rows in cache across its neuron blocks.
  for (let s0 = first; s0 < last; s0 += 256) {
    const s1 = Math.min(last, s0 + 256);
    for (let d0 = 0; d0 < D; d0 += 8) {
      const d1 = Math.min(D, d0 + 8);
      for (let s = s0; s < s1; s++) {
        const bt = picks[s] - start * T;
        if (spec.layout === 'nchw') {
          const b = Math.floor(bt / T),
            t = bt % T;
          for (let d = d0; d < d1; d++) X[d * S + s] = c[(b * D + d) * T + t];
        } else {
          const base = bt * D;
          for (let d = d0; d < d1; d++) X[d * S + s] = c[base + d];
        }
      }
    }
  }
  sink.cursor = last;
}

/**
 * One captured batch in the order the rest of this module reads: [batch, tokens, …] (sequence-first tensors
 * transposed), and only a view's range of the last axis. Always returns a fresh copy.
 */
export function normalizeLayout(data: Float32Array, dims: number[], spec: Pick<CaptureSpec, 'seqFirst' | 'view'>): { data: Float32Array; dims: number[] } {
  let out = data,
    d = dims.slice();
  if (spec.view) {
    const D = d[d.length - 1],
      { offset, size } = spec.view;
    const rows = out.length / D;
    const cut = new Float32Array(rows * size);
    for (let r = 0; r < rows; r++) cut.set(out.subarray(r * D + offset, r * D + offset + size), r * size);
    out = cut;
    d[d.length - 1] = size;
  }
  if (spec.seqFirst && d.length >= 3) {
    const [T, B] = d,
      inner = out.length / (T * B);
    const tr = new Float32Array(out.length);
    for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) tr.set(out.subarray((t * B + b) * inner, (t * B + b + 1) * inner), (b * T + t) * inner);
    out = tr;
    d = [B, T, ...d.slice(2)];
  }
  return { data: out === data ? new Float32Array(data) : out, dims: d };
}

/** Which tokens of a captured tensor are samples: one strategy per TOKEN_FILTERS entry (registry.ts). */
export type TokenFilterStrategy = (tokens: number, hasCls: boolean, grid?: number[]) => number[];

const allTokens = (tokens: number): number[] => Array.from({ length: tokens }, (_, i) => i);

export const TOKEN_FILTER_STRATEGIES: Record<TokenFilter, TokenFilterStrategy> = {
  all: (tokens) => allTokens(tokens),
  cls: (tokens, hasCls) => (hasCls ? [0] : allTokens(tokens)),
  // window: the central (g−2)×(g−2) patches (+ CLS), like the reference's window_6 on an 8×8 grid.
  window: (tokens, hasCls, grid) => {
    const offset = hasCls ? 1 : 0;
    const [gh, gw] =
      grid && grid.length === 2 && grid[0] * grid[1] === tokens - offset
        ? grid
        : [Math.round(Math.sqrt(tokens - offset)), Math.round(Math.sqrt(tokens - offset))];
    if (gh * gw !== tokens - offset || gh < 3 || gw < 3) return allTokens(tokens);
    const kept = hasCls ? [0] : [];
    for (let y = 1; y < gh - 1; y++) for (let x = 1; x < gw - 1; x++) kept.push(offset + y * gw + x);
    return kept;
  },
};

/** Token indices kept by the filter, for a tensor with `tokens` tokens (CLS first when hasCls). */
export function keptTokens(tokens: number, filter: TokenFilter, hasCls: boolean, grid?: number[]): number[] {
  return TOKEN_FILTER_STRATEGIES[filter](tokens, hasCls, grid);
}

/** (x − mean) / (std + 1e-9) per neuron, unbiased std — the reference's transform. */
export function standardizeRows(X: Float32Array, rows: number, cols: number): void {
  for (let d = 0; d < rows; d++) {
    const o = d * cols;
    let mean = 0;
    for (let s = 0; s < cols; s++) mean += X[o + s];
    mean /= cols;
    let v = 0;
    for (let s = 0; s < cols; s++) {
      const z = X[o + s] - mean;
      v += z * z;
    }
    const std = Math.sqrt(v / Math.max(1, cols - 1));
    const inv = 1 / (std + 1e-9);
    for (let s = 0; s < cols; s++) X[o + s] = (X[o + s] - mean) * inv;
  }
}
