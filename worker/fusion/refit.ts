// Alignment refit (beyond the paper): after OT alignment, every aligned linear layer of the fused model is refit
// in closed form from calibration activations, RegMean-style. With Ẑ_k = [X_k·T_k, 1] the inputs of the layer in
// model k moved into the anchor's basis (T_k: the layer's incoming transport map, n·P) plus a ones column for the
// bias, and Ŵ_k = [W_kᵀ; b_kᵀ] model k's aligned layer:
//
//   regmean:   W = (Σ α_k Ẑ_kᵀẐ_k + λI)⁻¹ (Σ α_k Ẑ_kᵀẐ_k Ŵ_k + λ W̄)
//   regmean++: W = (X̂ᵀX̂ + λI)⁻¹ (Σ α_k X̂ᵀẐ_k Ŵ_k + λ W̄)     X̂ = [X, 1], the fused model's own inputs to the
//              layer, recomputed level by level (q/k/v → o → fc1 → fc2 per block) after the levels before it are refit
//
// where W̄ = Σ α_k Ŵ_k is plain averaging and λ = refitRidge · mean diag of the Gram on the left. The ridge pulls
// towards W̄ (not towards 0), so λ → ∞ is plain averaging, and the objective at W is never above its value at W̄:
// the refit never makes a layer's reconstruction error on the calibration set worse than plain averaging (checked
// per layer; the diagnostics report both). Gram products are accumulated in float64 over streamed batches: only
// (d+1)² numbers per input tensor and model are kept, never the activations themselves. The input Gram of a
// parent is taken in its own basis and moved by the map afterwards (T̂ᵀ G T̂), which is cheaper than moving X.
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { OtfuseError, throwIfCancelled, withContext } from '../errors';
import type { OnnxModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import type { LinearRef, ModelPlan } from '../graph/analyze';
import type { ProviderChoice } from '../runtime/providers';
import { ModelRunner, checkFinite } from '../runtime/runner';
import { createOrtSession } from '../runtime/session';
import { productModel } from '../runtime/opmodel';
import type { RefitMode } from './registry';
import { compileSchedule, linearLevels } from './schedule';
import { inputT, type TMap } from './maps';
import { solveSpd } from './dense';
import { readBias, readWeight, toStorage, weightRegion, biasRegion, writeRegion, type ParamValues, type StoredParam } from './slices';
import { weighRows } from './refitmix';
import { CrossProducts, RowPicker, augmentRows, blockOf, gramEntries, inputTensor, type CaptureGrams, type GramEntry, type RefitLayer } from './refitgrams';

export type { RefitLayer } from './refitgrams';

export interface RefitLayerResult {
  name: string;
  /** Relative reconstruction error Σα‖Ẑ_kW − Ẑ_kŴ_k‖² / Σα‖Ẑ_kŴ_k‖² on the calibration set (regmean++: with the fused inputs). */
  errorAverage: number;
  errorRefit: number;
  lambda: number;
  /** Input rows (samples × tokens) the Grams were accumulated over. */
  rows: number;
}

export interface RefitInput {
  mode: Exclude<RefitMode, 'none'>;
  ridge: number;
  models: OnnxModel[];
  plans: ModelPlan[];
  /** The averaged fused model; refit weights are written into it in place. */
  fused: OnnxModel;
  /** Aligned values of model k (k ≥ 1) by anchor initializer name, in the anchor's layout; index 0 unused. */
  aligned: ParamValues[];
  /** Normalised model weights (sum 1), anchor first. */
  alpha: number[];
  /** The incoming map of each anchor linear for model k (k ≥ 1; null: none), from the alignment. */
  inputMaps: Map<LinearRef, TMap | null>[];
  calib: Dataset;
  samples: number;
  batchSize: number;
  /** Cap on input rows (samples × real tokens) per input tensor, as the capture's token budget: beyond it each row
   * is kept with probability budget / candidates (seeded, the same rows for every model). 0 or absent: every row. */
  tokenBudget?: number;
  tokenSeed?: number;
  provider?: ProviderChoice;
  signal?: AbortSignal;
  onLayer?: (r: RefitLayerResult, done: number, total: number) => void;
  /** Per-sample weight w_k(x) of each model's rows (recipe.refitMix, refitmix.ts); absent: uniform. With it, regmean
   * runs a pass of its own (the capture's Grams are unweighted). */
  sampleWeights?: Float64Array[];
  /** regmean: the parents' Grams as collected during activation capture (no pass of its own); ready ones only. */
  grams?: CaptureGrams;
  /** Loads an input map that was set aside (CaptureGrams.holdMap) while the alignment ran. */
  resolveMap?: (map: TMap) => TMap;
}

/** The linear layers in dependency order (from the alignment schedule), grouped in levels whose inputs do not depend on each other. */
export function refitLevels(plans: ModelPlan[]): RefitLayer[][] {
  const levels: RefitLayer[][] = [];
  for (const level of linearLevels(compileSchedule(plans[0]))) {
    const layers: RefitLayer[] = [];
    for (const l of level) {
      const refs = plans.map((p) => l.ref(p));
      if (refs.every((r) => r)) layers.push({ name: l.name, refs: refs as LinearRef[] });
    }
    if (layers.length) levels.push(layers);
  }
  return levels;
}

/** The most activation floats (all sources, all captured tensors) one calibration batch of the refit may hold: 256 MB. */
const ACTIVATION_BUDGET = 64 * 2 ** 20;

/** T̂ = blockdiag(T, 1) for an input map T (n×m, input-side scaling), or identity of size d+1. */
function augmentedT(map: TMap | null, d: number): { T: Float64Array; n: number; m: number } {
  if (!map) {
    const T = new Float64Array((d + 1) * (d + 1));
    for (let i = 0; i <= d; i++) T[i * (d + 1) + i] = 1;
    return { T, n: d + 1, m: d + 1 };
  }
  const t = inputT(map),
    n = map.n + 1,
    m = map.m + 1;
  const T = new Float64Array(n * m);
  for (let i = 0; i < map.n; i++) for (let j = 0; j < map.m; j++) T[i * m + j] = t[i * map.m + j];
  T[n * m - 1] = 1;
  return { T, n, m };
}

/** Above this many multiply-adds a float64 product goes to ONNX Runtime (MatMul, double) instead of plain JS. */
const ORT_F64_THRESHOLD = 20_000_000;

let f64Sessions: Promise<{ mm: ort.InferenceSession; mmT: ort.InferenceSession } | undefined> | undefined;
function f64Models(): Promise<{ mm: ort.InferenceSession; mmT: ort.InferenceSession } | undefined> {
  f64Sessions ??= (async () => {
    try {
      const build = (transA: boolean) => {
        const mm = { opType: 'MatMul', name: 'mm', input: [transA ? 'At' : 'A', 'B'], output: ['C'] };
        const t = {
          opType: 'Transpose',
          name: 't',
          input: ['A'],
          output: ['At'],
          attribute: [onnx.AttributeProto.create({ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 0] })],
        };
        return productModel('mm64', transA ? [t, mm] : [mm], { A: ['p', 'q'], B: ['k', 'c'] }, { C: ['r', 'c'] }, onnx.TensorProto.DataType.DOUBLE);
      };
      return { mm: await createOrtSession(build(false), { memArena: false }), mmT: await createOrtSession(build(true), { memArena: false }) };
    } catch {
      return undefined; // plain JS is always there
    }
  })();
  return f64Sessions;
}

/** Releases the float64 product sessions (refitModel calls it when done). */
export async function releaseRefitSessions(): Promise<void> {
  const s = await f64Sessions;
  f64Sessions = undefined;
  if (s) {
    await s.mm.release();
    await s.mmT.release();
  }
}

/** C[r×c] = A[r×k]·B[k×c] (float64; large products in ONNX Runtime). */
export async function mm(A: Float64Array, B: Float64Array, r: number, k: number, c: number): Promise<Float64Array> {
  if (r * k * c >= ORT_F64_THRESHOLD) {
    const s = await f64Models();
    if (s) return (await s.mm.run({ A: new ort.Tensor('float64', A, [r, k]), B: new ort.Tensor('float64', B, [k, c]) })).C.data as Float64Array; // a fresh array per run
  }
  return matmul(A, B, r, k, c);
}

/** C[r×c] = Aᵀ·B for A stored k×r (float64; large products in ONNX Runtime). */
export async function mmT(A: Float64Array, B: Float64Array, k: number, r: number, c: number): Promise<Float64Array> {
  if (r * k * c >= ORT_F64_THRESHOLD) {
    const s = await f64Models();
    if (s) return (await s.mmT.run({ A: new ort.Tensor('float64', A, [k, r]), B: new ort.Tensor('float64', B, [k, c]) })).C.data as Float64Array;
  }
  return matTmul(A, B, k, r, c);
}

/** C[r×c] = Aᵀ[r×k]·B[k×c] for A stored k×r. */
function matTmul(A: Float64Array, B: Float64Array, k: number, r: number, c: number): Float64Array {
  const C = new Float64Array(r * c);
  for (let p = 0; p < k; p++) {
    for (let i = 0; i < r; i++) {
      const a = A[p * r + i];
      if (a === 0) continue;
      for (let j = 0; j < c; j++) C[i * c + j] += a * B[p * c + j];
    }
  }
  return C;
}

function matmul(A: Float64Array, B: Float64Array, r: number, k: number, c: number): Float64Array {
  const C = new Float64Array(r * c);
  for (let i = 0; i < r; i++) {
    for (let p = 0; p < k; p++) {
      const a = A[i * k + p];
      if (a === 0) continue;
      for (let j = 0; j < c; j++) C[i * c + j] += a * B[p * c + j];
    }
  }
  return C;
}

export { solveSpd } from './dense';

/** tr(Aᵀ G B) for A, B (n×c), G (n×n). */
async function traceForm(A: Float64Array, G: Float64Array, B: Float64Array, n: number, c: number): Promise<number> {
  const GB = await mm(G, B, n, n, c);
  let s = 0;
  for (let k = 0; k < A.length; k++) s += A[k] * GB[k];
  return s;
}

interface Products {
  /** Per model k: Ẑ_kᵀẐ_k in the anchor basis ((da+1)²). */
  gkk: Float64Array[];
  /** regmean++: X̂ᵀX̂ of the fused model and X̂ᵀẐ_k per model. */
  gff?: Float64Array;
  cfk?: Float64Array[];
  rows: number;
}

/**
 * Streams the calibration data through the parents (and, for regmean++, the current fused model) and returns
 * the Gram products of the given input tensors, per tensor. Memory: the products only.
 */
async function gramProducts(
  input: RefitInput,
  layers: RefitLayer[],
  withFused: boolean,
  parentRunners?: ModelRunner[],
  weights?: Float64Array[],
): Promise<Map<string, Products>> {
  const { models, calib } = input;
  const K = models.length;
  const entries = gramEntries(models, layers);
  const sources = [...models.map((m, k) => ({ model: m, k })), ...(withFused ? [{ model: input.fused, k: -1 }] : [])];
  const runners: ModelRunner[] = [...(parentRunners ?? [])];
  const owned: ModelRunner[] = [];
  const products = await CrossProducts.create();
  const raw: RawProducts[] = entries.map((e) => ({
    kk: e.db.map((d) => new Float64Array((d + 1) * (d + 1))),
    ff: withFused ? new Float64Array((e.da + 1) * (e.da + 1)) : undefined,
    fk: withFused ? e.db.map((d) => new Float64Array((e.da + 1) * (d + 1))) : undefined,
    rows: 0,
  }));
  try {
    for (const s of sources.slice(runners.length)) {
      const probe = s.model.clone();
      probe.setOutputs(entries.map((e) => (s.k < 0 ? e.key : e.tensors[s.k])));
      const runner = await ModelRunner.create(probe, { provider: input.provider });
      runners.push(runner);
      owned.push(runner);
    }
    const bindings = runners.map((r) => r.bind(calib, { checkLabels: false }));
    let floatsPerSample = 0;
    const batchFor = (max: number) => Math.max(1, Math.min(max, Math.floor(ACTIVATION_BUDGET / Math.max(1, floatsPerSample))));
    const total = Math.min(input.samples, calib.size);
    // Token budget: how many candidate rows each entry has (real tokens only for text), and the share to keep.
    const maskInput = bindings[0].attention_mask;
    const realTokens = maskInput && (input.tokenBudget ?? 0) > 0 ? countRealTokens(calib, maskInput, total) : undefined;
    const picker = new RowPicker(entries.length, input.tokenBudget ?? 0, input.tokenSeed ?? 0, (masked, tokens) =>
      masked && realTokens !== undefined ? realTokens : total * tokens,
    );
    // Bounded memory: one sample first, then as many per batch as keep the captured activations of all sources
    // under ACTIVATION_BUDGET floats (at most batchSize).
    let step = 1;
    for (let start = 0; start < total; start += step) {
      throwIfCancelled(input.signal);
      if (start > 0) step = batchFor(input.batchSize);
      const idx = Array.from({ length: Math.min(step, total - start) }, (_, i) => start + i);
      const batch = calib.take(idx);
      checkFinite(batch, calib.source);
      const maskName = bindings[0].attention_mask;
      const mask = maskName ? Array.from(batch.feeds[maskName].data as ArrayLike<number | bigint>, (v) => Number(v) !== 0) : undefined;
      const results = await Promise.all(
        runners.map((r, i) =>
          r.run(
            batch,
            bindings[i],
            entries.map((e) => (sources[i].k < 0 ? e.key : e.tensors[sources[i].k])),
          ),
        ),
      );
      if (start === 0) floatsPerSample = results.reduce((s, res) => s + Object.values(res).reduce((t, v) => t + v.data.length, 0), 0);
      for (let ei = 0; ei < entries.length; ei++) {
        const e = entries[ei];
        const get = (i: number) => {
          const t = results[i][sources[i].k < 0 ? e.key : e.tensors[sources[i].k]];
          return { data: t.data as Float32Array, ...blockOf(t.dims.map(Number), t.data.length) };
        };
        const xs = sources.map((_, i) => get(i));
        const n = xs[0].n;
        if (xs.some((x) => x.n !== n)) throw new OtfuseError('MISMATCH', `refit: the models see different numbers of tokens at '${e.key}'`);
        const rows = picker.rows(ei, n, xs[0].tokens, mask);
        const aug = xs.map((x) => augmentRows(x.data, x.d, rows, n));
        const r = raw[ei];
        const count = aug[0].rows;
        r.rows += count;
        // recipe.refitMix: model k's rows weighted per sample (refitmix.ts), √w in its Gram, w in the cross product
        const weigh = (k: number, power: 1 | 0.5) => (weights ? weighRows(aug[k].X, xs[k].d + 1, rows, xs[k].tokens, start, weights[k], power) : aug[k].X);
        for (let k = 0; k < K; k++) await products.addGram(r.kk[k], weigh(k, 0.5), xs[k].d + 1, count);
        if (withFused) {
          const f = aug[K];
          await products.addGram(r.ff!, f.X, xs[K].d + 1, count);
          for (let k = 0; k < K; k++) await products.add(r.fk![k], f.X, xs[K].d + 1, weigh(k, 1), xs[k].d + 1, count);
        }
      }
    }
  } finally {
    for (const r of owned) await r.release();
    await products.release();
  }
  entries.forEach((e, ei) => {
    raw[ei].kk.forEach((G, k) => CrossProducts.symmetrize(G, e.db[k] + 1));
    if (raw[ei].ff) CrossProducts.symmetrize(raw[ei].ff!, e.da + 1);
  });
  const out = new Map<string, Products>();
  for (let ei = 0; ei < entries.length; ei++) out.set(entries[ei].key, await moveProducts(input, layers, entries[ei], raw[ei]));
  return out;
}

/** One entry's Grams as accumulated, each model in its own basis. */
interface RawProducts {
  kk: Float64Array[];
  ff?: Float64Array;
  fk?: Float64Array[];
  rows: number;
}

/** Moves model k's Grams into the anchor's basis with the layer's input map: T̂ᵀ G T̂ (and (X̂ᵀX̂_k) T̂ for regmean++). */
async function moveProducts(input: RefitInput, layers: RefitLayer[], e: GramEntry, r: RawProducts): Promise<Products> {
  const l = layers.find((x) => inputTensor(input.models[0], x.refs[0]) === e.key)!;
  const gkk: Float64Array[] = [];
  const cfk: Float64Array[] = [];
  for (let k = 0; k < input.models.length; k++) {
    const db = e.db[k];
    const held = k === 0 ? null : (input.inputMaps[k].get(l.refs[0]) ?? null);
    const map = held && input.resolveMap ? input.resolveMap(held) : held;
    if (!map && db === e.da) {
      // no map (the anchor): T̂ = I, skip two (d+1)³ products
      gkk.push(r.kk[k]);
      if (r.fk) cfk.push(r.fk[k]);
      continue;
    }
    const T = augmentedT(map, db);
    if (T.n !== db + 1 || T.m !== e.da + 1)
      throw new OtfuseError('INTERNAL', `refit: the input map of '${e.key}' is ${T.n - 1}×${T.m - 1}, the layers take ${db} → ${e.da}`);
    gkk.push(await mmT(T.T, await mm(r.kk[k], T.T, db + 1, db + 1, e.da + 1), db + 1, e.da + 1, e.da + 1)); // T̂ᵀ G T̂
    r.kk[k] = new Float64Array(0); // the raw Gram is not needed past this point
    if (r.fk) cfk.push(await mm(r.fk[k], T.T, e.da + 1, db + 1, e.da + 1)); // (X̂ᵀX̂_k) T̂
  }
  return { gkk, gff: r.ff, cfk: r.fk ? cfk : undefined, rows: r.rows };
}

/** regmean from the Grams the capture collected: this level's entries read back from the spool and moved. */
async function storedProducts(input: RefitInput, layers: RefitLayer[]): Promise<Map<string, Products>> {
  const out = new Map<string, Products>();
  for (const e of gramEntries(input.models, layers)) {
    let rows = 0;
    const kk = input.models.map((_, k) => {
      const g = input.grams!.read(k, e.key);
      rows = g.rows;
      return g.G;
    });
    out.set(e.key, await moveProducts(input, layers, e, { kk, rows }));
  }
  return out;
}

/** Top-left (n−1)×(n−1) block (drops the bias row/column) of an n×n matrix. */
/** Real (unmasked) tokens over the first `total` samples of a text dataset. */
function countRealTokens(calib: Dataset, maskInput: string, total: number): number {
  let count = 0;
  for (let start = 0; start < total; start += 256) {
    const idx = Array.from({ length: Math.min(256, total - start) }, (_, i) => start + i);
    const m = calib.take(idx).feeds[maskInput].data as ArrayLike<number | bigint>;
    for (let i = 0; i < m.length; i++) if (Number(m[i]) !== 0) count++;
  }
  return count;
}

function dropLast(G: Float64Array, n: number): Float64Array {
  const m = n - 1,
    out = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) out[i * m + j] = G[i * n + j];
  return out;
}

/** solveSpd for one layer. A failure names the parent whose input Gram is not finite (else the anchor), that
 * model's node of the layer, and the calibration data the Grams come from. */
function solveLayer(
  G: Float64Array,
  n: number,
  B: Float64Array,
  c: number,
  lambda: number,
  input: RefitInput,
  layer: RefitLayer,
  gkk: Float64Array[],
): Float64Array {
  try {
    return solveSpd(G, n, B, c, lambda);
  } catch (err) {
    const k = Math.max(
      0,
      gkk.findIndex((g) => g.some((v) => !Number.isFinite(v))),
    );
    throw withContext(err, { file: input.models[k].file, node: layer.refs[k].node }, `refit on the calibration data ${input.calib.source}`);
  }
}

/** Runs the refit over every level; writes the refit weights into input.fused; returns per-layer diagnostics. */
export async function refitModel(input: RefitInput): Promise<RefitLayerResult[]> {
  const { fused, alpha } = input;
  const K = input.models.length;
  const levels = refitLevels(input.plans);
  const total = levels.reduce((s, l) => s + l.length, 0);
  const results: RefitLayerResult[] = [];
  const anchorParam = (name: string): StoredParam => input.models[0].getInitializer(name);
  const pending = new Map<string, Float64Array>();
  const current = (name: string): Float64Array => {
    let v = pending.get(name);
    if (!v) {
      v = Float64Array.from(fused.getInitializer(name).data);
      pending.set(name, v);
    }
    return v;
  };
  // regmean: the parents' inputs do not depend on the refit: their Grams come from the capture (read back level by
  // level), or one pass of the refit's own collects every level's.
  const stored = input.mode === 'regmean' && !!input.grams && !input.sampleWeights;
  // What no layer named (e.g. the models disagree on token counts) leaves naming the anchor, whose layers the refit writes.
  const inRefit = (err: unknown) => withContext(err, { file: input.models[0].file }, `refit on the calibration data ${input.calib.source}`);
  const once =
    input.mode === 'regmean' && !stored
      ? await gramProducts(input, levels.flat(), false, undefined, input.sampleWeights).catch((err: unknown) => {
          throw inRefit(err);
        })
      : undefined;
  // regmean++: the parents' sessions serve every level (only the fused model changes between levels).
  const parents: ModelRunner[] = [];
  if (input.mode === 'regmean++') {
    for (let k = 0; k < K; k++) {
      const probe = input.models[k].clone();
      probe.setOutputs([...new Set(levels.flat().map((l) => inputTensor(input.models[k], l.refs[k])))]);
      parents.push(await ModelRunner.create(probe, { provider: input.provider }));
    }
  }
  try {
    for (const level of levels) {
      const products = once ?? (stored ? await storedProducts(input, level) : await gramProducts(input, level, true, parents, input.sampleWeights));
      for (const layer of level) {
        const la = layer.refs[0];
        const key = inputTensor(input.models[0], la);
        const pr = products.get(key)!;
        const d = la.inDim,
          o = la.outDim,
          hasBias = !!la.bias;
        const n = hasBias ? d + 1 : d;
        // Ŵ_k = [W_kᵀ; b_kᵀ] (n × o) of every model, in the anchor's basis.
        const stacked = (k: number): Float64Array => {
          const dims = anchorParam(la.weight).dims;
          const W = k === 0 ? readWeight(anchorParam(la.weight), la) : readWeight({ dims, data: input.aligned[k].get(la.weight)! }, la); // [o, d]
          const b = !hasBias ? undefined : k === 0 ? readBias(anchorParam(la.bias!), la) : readBias({ dims: [0], data: input.aligned[k].get(la.bias!)! }, la);
          const out = new Float64Array(n * o);
          for (let r = 0; r < o; r++) {
            for (let c = 0; c < d; c++) out[c * o + r] = W[r * d + c];
            if (b) out[d * o + r] = b[r];
          }
          return out;
        };
        const Ws = Array.from({ length: K }, (_, k) => stacked(k));
        const Wbar = new Float64Array(n * o);
        for (let k = 0; k < K; k++) for (let i = 0; i < Wbar.length; i++) Wbar[i] += alpha[k] * Ws[k][i];
        const sub = (G: Float64Array, size: number) => (hasBias ? G : dropLast(G, size));
        const gkk = pr.gkk.map((G) => sub(G, d + 1));
        let lhs: Float64Array, rhs: Float64Array;
        // G_kŴ_k (regmean) or C_kŴ_k (regmean++) per model: the right-hand side and, reused, the error traces.
        const mw: Float64Array[] = [];
        if (input.mode === 'regmean') {
          lhs = new Float64Array(n * n);
          rhs = new Float64Array(n * o);
          for (let k = 0; k < K; k++) {
            for (let i = 0; i < lhs.length; i++) lhs[i] += alpha[k] * gkk[k][i];
            const GW = await mm(gkk[k], Ws[k], n, n, o);
            mw.push(GW);
            for (let i = 0; i < rhs.length; i++) rhs[i] += alpha[k] * GW[i];
          }
        } else {
          lhs = sub(pr.gff!, d + 1);
          rhs = new Float64Array(n * o);
          for (let k = 0; k < K; k++) {
            const C = hasBias ? pr.cfk![k] : dropLast(pr.cfk![k], d + 1);
            const CW = await mm(C, Ws[k], n, n, o);
            mw.push(CW);
            for (let i = 0; i < rhs.length; i++) rhs[i] += alpha[k] * CW[i];
          }
        }
        let diag = 0;
        for (let i = 0; i < n; i++) diag += lhs[i * n + i];
        const lambda = input.ridge * (diag / n);
        const b = Float64Array.from(rhs);
        for (let i = 0; i < b.length; i++) b[i] += lambda * Wbar[i];
        let W = solveLayer(lhs, n, b, o, lambda, input, layer, gkk);
        // Reconstruction error (relative) of a candidate W.
        const dot = (A: Float64Array, B: Float64Array): number => {
          let t = 0;
          for (let i = 0; i < A.length; i++) t += A[i] * B[i];
          return t;
        };
        // tr(Ŵ_kᵀ G_k Ŵ_k) per model (regmean: from the right-hand side's products).
        const wgw: number[] = [];
        for (let k = 0; k < K; k++) wgw.push(input.mode === 'regmean' ? dot(Ws[k], mw[k]) : await traceForm(Ws[k], gkk[k], Ws[k], n, o));
        let denom = 0;
        for (let k = 0; k < K; k++) denom += alpha[k] * wgw[k];
        const wsum = denom;
        denom ||= 1;
        // regmean: Σ_k α_k‖Ẑ_k(X − Ŵ_k)‖² = tr(XᵀLX) − 2⟨X, R⟩ + Σ_k α_k tr(Ŵ_kᵀG_kŴ_k) with L = Σα_kG_k (lhs) and
        // R = Σα_kG_kŴ_k (rhs): one product L·W̄ for plain averaging, none for the solution, where (L + λI)W = R + λW̄
        // gives LW = R + λ(W̄ − W). regmean++: tr(XᵀX̂ᵀX̂X) is the same for every model.
        const errorOf = async (X: Float64Array, LX?: Float64Array): Promise<number> => {
          let s = 0;
          if (input.mode === 'regmean') {
            LX ??= await mm(lhs, X, n, n, o);
            s = dot(X, LX) - 2 * dot(X, rhs) + wsum;
          } else {
            const xlx = await traceForm(X, lhs, X, n, o);
            for (let k = 0; k < K; k++) s += alpha[k] * (xlx - 2 * dot(X, mw[k]) + wgw[k]); // tr(Xᵀ C_k Ŵ_k) = ⟨X, C_kŴ_k⟩
          }
          return Math.max(0, s) / denom;
        };
        const errorAverage = await errorOf(Wbar);
        let errorRefit = await errorOf(W, input.mode === 'regmean' ? rhs.map((r, i) => r + lambda * (Wbar[i] - W[i])) : undefined);
        // The ridge towards W̄ makes this impossible in exact arithmetic; guard against round-off all the same.
        if (!(errorRefit <= errorAverage)) {
          W = Wbar;
          errorRefit = errorAverage;
        }
        // Write back into the fused model (through the layer's slice), in the anchor's layout.
        const Wc = new Float64Array(o * d),
          bc = new Float64Array(o);
        for (let r = 0; r < o; r++) {
          for (let c = 0; c < d; c++) Wc[r * d + c] = W[c * o + r];
          if (hasBias) bc[r] = W[d * o + r];
        }
        const wDims = fused.getInitializer(la.weight).dims;
        writeRegion(current(la.weight), toStorage(Wc, la), weightRegion(la, wDims));
        if (hasBias) writeRegion(current(la.bias!), bc, biasRegion(la, current(la.bias!).length));
        const res: RefitLayerResult = { name: layer.name, errorAverage, errorRefit, lambda, rows: pr.rows };
        results.push(res);
        input.onLayer?.(res, results.length, total);
      }
      // The next level reads the refit layers (regmean++ forwards the fused model).
      for (const [name, v] of pending) fused.setInitializer(name, Float32Array.from(v));
      pending.clear();
    }
  } catch (err) {
    throw inRefit(err);
  } finally {
    for (const r of parents) await r.release();
    await releaseRefitSessions();
  }
  return results;
}
