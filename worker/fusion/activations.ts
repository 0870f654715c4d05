// Activation capture with ONNX Runtime: the tensors the alignment plan names become extra graph outputs of a
// clone of the model; calibration samples are run in batches and each tensor is turned into a neuron-major
// matrix (neurons × samples·tokens), token-filtered and optionally standardised per neuron.
import { throwIfCancelled, OtfuseError } from '../errors';
import type { OnnxModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import { ModelRunner, checkFinite } from '../runtime/session';
import type { ProviderChoice } from '../runtime/providers';
import type { ModelPlan, TensorView } from '../graph/analyze';

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

export interface NeuronActs {
  /** neurons × samples, row-major */
  X: Float32Array;
  neurons: number;
  samples: number;
}

export interface ActivationStore {
  /** Neuron-major, filtered, standardised (as the recipe says) activations of a tensor. */
  get(tensor: string): NeuronActs;
  /** Mean |activation| per neuron over every sample and token (for weighted residual policies). */
  absMean(tensor: string): Float64Array;
  bytes: number;
}

/** Every tensor whose activations the fusion of this plan can use. */
export function captureSpecs(plan: ModelPlan): CaptureSpec[] {
  const seen = new Set<string>();
  return captureGroups(plan).flat().filter((s) => (seen.has(s.tensor) ? false : (seen.add(s.tensor), true)));
}

/** The tensors each stage of the alignment reads: [embedding, block 0, …, block L−1, head]. */
export function captureGroups(plan: ModelPlan): CaptureSpec[][] {
  return rawCaptureGroups(plan).map((g) => g.map((s) => withLayout(plan, s)));
}

/** Adds what the plan says about a tensor's storage: sequence-first order, or a view into a packed tensor. */
function withLayout(plan: ModelPlan, s: CaptureSpec): CaptureSpec {
  const view = plan.views?.[s.tensor];
  const seqFirst = plan.seqFirst?.includes(view ? view.tensor : s.tensor) || plan.seqFirst?.includes(s.tensor);
  return { ...s, ...(seqFirst ? { seqFirst: true } : {}), ...(view ? { view } : {}) };
}

function rawCaptureGroups(plan: ModelPlan): CaptureSpec[][] {
  const e = plan.embedding;
  const groups: CaptureSpec[][] = [e.kind === 'patch'
    ? [{ tensor: e.patch.out, layout: 'nchw' }, { tensor: e.out, layout: 'tokens' }]
    : [{ tensor: e.sum, layout: 'tokens' }, { tensor: e.out, layout: 'tokens' }]];
  for (const b of plan.blocks) {
    groups.push([b.input, b.attn.q.out, b.attn.k.out, b.attn.v.out, b.attn.o.out, b.attnAdd, b.fc1.out, b.fc2.out].map((tensor) => ({ tensor, layout: 'tokens' as const })));
  }
  groups.push(plan.head.pooler ? [{ tensor: plan.head.pooler.out, layout: 'vector' }] : []);
  return groups;
}

/** Bytes one model's activations take for every tensor at once (neuron-major float32). */
export function estimateActivationBytes(plan: ModelPlan, samples: number): number {
  const tokens = plan.tokens ?? 1;
  let neurons = 0;
  for (const s of captureSpecs(plan)) {
    if (s.layout === 'vector') neurons += plan.hidden / tokens;
    else if (s.tensor === plan.blocks.find((b) => b.fc1.out === s.tensor)?.fc1.out) neurons += plan.mlp;
    else neurons += plan.hidden;
  }
  return neurons * tokens * samples * 4;
}

/**
 * An ActivationStore that holds one stage's tensors at a time: `prepare(g)` runs the calibration data through
 * the model again for stage g's tensors and drops the previous stage's. Peak memory then scales with one block's
 * activations instead of the whole model's (one extra forward pass per stage).
 */
export class StagedActivations implements ActivationStore {
  private current?: ActivationStore;
  private stage = -1;
  private readonly groups: CaptureSpec[][];
  peakBytes = 0;

  constructor(private readonly model: OnnxModel, plan: ModelPlan, private readonly dataset: Dataset, private readonly options: CaptureOptions) {
    this.groups = captureGroups(plan);
  }

  async prepare(stage: number): Promise<void> {
    if (stage === this.stage) return;
    this.current = undefined; // let the previous stage's arrays go before capturing the next
    const specs = this.groups[stage] ?? [];
    this.current = specs.length ? await captureActivations(this.model, undefined, this.dataset, this.options, specs) : undefined;
    this.stage = stage;
    this.peakBytes = Math.max(this.peakBytes, this.current?.bytes ?? 0);
  }

  get bytes(): number {
    return this.current?.bytes ?? 0;
  }

  get(tensor: string): NeuronActs {
    if (!this.current) throw new OtfuseError('INTERNAL', `activation '${tensor}' requested outside its stage`);
    return this.current.get(tensor);
  }

  absMean(tensor: string): Float64Array {
    if (!this.current) throw new OtfuseError('INTERNAL', `activation '${tensor}' requested outside its stage`);
    return this.current.absMean(tensor);
  }
}

export interface CaptureOptions {
  samples: number;
  batchSize: number;
  tokenFilter: 'all' | 'cls' | 'window';
  standardize: boolean;
  provider?: ProviderChoice;
  signal?: AbortSignal;
  /** Grid of patch tokens (for the window filter) and whether token 0 is a CLS token. */
  grid?: number[];
  hasCls: boolean;
}

interface Raw {
  chunks: Float32Array[];
  dims: number[];
  /** Per chunk: token validity [batch × tokens] from the attention mask (padding never counts as a sample). */
  masks: (Uint8Array | undefined)[];
}

export async function captureActivations(model: OnnxModel, plan: ModelPlan | undefined, dataset: Dataset, options: CaptureOptions, only?: CaptureSpec[]): Promise<ActivationStore> {
  const specs = only ?? captureSpecs(plan!);
  const probe = model.clone();
  const sourceOf = (s: CaptureSpec) => s.view?.tensor ?? s.tensor;
  const sources = [...new Set(specs.map(sourceOf))];
  probe.setOutputs(sources);
  const runner = await ModelRunner.create(probe, { provider: options.provider });
  const raw = new Map<string, Raw>();
  try {
    const binding = runner.bind(dataset, { checkLabels: false });
    // Text models: the attention mask input says which tokens are real.
    const maskArray = binding.attention_mask;
    const total = Math.min(options.samples, dataset.size);
    if (total < options.samples && total < 2) throw new OtfuseError('BAD_DATA', `need at least 2 calibration samples, the dataset has ${dataset.size}`, { file: dataset.source });
    for (let start = 0; start < total; start += options.batchSize) {
      throwIfCancelled(options.signal);
      const idx = Array.from({ length: Math.min(options.batchSize, total - start) }, (_, i) => start + i);
      const batch = dataset.take(idx);
      checkFinite(batch, dataset.source);
      const result = await runner.run(batch, binding, sources);
      let mask: Uint8Array | undefined;
      if (maskArray) {
        const m = batch.feeds[maskArray].data;
        mask = Uint8Array.from(m as ArrayLike<number | bigint>, (v) => (Number(v) !== 0 ? 1 : 0));
      }
      for (const s of specs) {
        const out = result[sourceOf(s)];
        const t = normalizeLayout(out.data as Float32Array, out.dims.map(Number), s);
        const r = raw.get(s.tensor) ?? { chunks: [], dims: t.dims, masks: [] };
        r.chunks.push(t.data);
        r.masks.push(mask);
        raw.set(s.tensor, r);
      }
    }
  } finally {
    await runner.release();
  }
  // Convert each tensor to its neuron-major form now and drop the raw batches as we go, so the peak holds
  // one copy of the activations (plus one tensor in flight), not two.
  const acts = new Map<string, NeuronActs>();
  const absMeans = new Map<string, Float64Array>();
  let bytes = 0;
  for (const spec of specs) {
    const r = raw.get(spec.tensor)!;
    absMeans.set(spec.tensor, absMeanOf(r, spec.layout));
    const v = toNeuronMajor(r, spec.layout, options);
    acts.set(spec.tensor, v);
    bytes += v.X.byteLength;
    raw.delete(spec.tensor);
  }
  return {
    bytes,
    get(tensor) {
      const v = acts.get(tensor);
      if (!v) throw new OtfuseError('INTERNAL', `activation '${tensor}' was not captured`);
      return v;
    },
    absMean(tensor) {
      const v = absMeans.get(tensor);
      if (!v) throw new OtfuseError('INTERNAL', `activation '${tensor}' was not captured`);
      return v;
    },
  };
}

/**
 * One captured batch in the order the rest of this module reads: [batch, tokens, …] (sequence-first tensors
 * transposed), and only a view's range of the last axis. Always returns a fresh copy.
 */
export function normalizeLayout(data: Float32Array, dims: number[], spec: Pick<CaptureSpec, 'seqFirst' | 'view'>): { data: Float32Array; dims: number[] } {
  let out = data, d = dims.slice();
  if (spec.view) {
    const D = d[d.length - 1], { offset, size } = spec.view;
    const rows = out.length / D;
    const cut = new Float32Array(rows * size);
    for (let r = 0; r < rows; r++) cut.set(out.subarray(r * D + offset, r * D + offset + size), r * size);
    out = cut;
    d[d.length - 1] = size;
  }
  if (spec.seqFirst && d.length >= 3) {
    const [T, B] = d, inner = out.length / (T * B);
    const tr = new Float32Array(out.length);
    for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) tr.set(out.subarray((t * B + b) * inner, (t * B + b + 1) * inner), (b * T + t) * inner);
    out = tr;
    d = [B, T, ...d.slice(2)];
  }
  return { data: out === data ? new Float32Array(data) : out, dims: d };
}

/** Token indices kept by the filter, for a tensor with `tokens` tokens (CLS first when hasCls). */
export function keptTokens(tokens: number, filter: CaptureOptions['tokenFilter'], hasCls: boolean, grid?: number[]): number[] {
  const all = Array.from({ length: tokens }, (_, i) => i);
  if (filter === 'all') return all;
  const offset = hasCls ? 1 : 0;
  if (filter === 'cls') return hasCls ? [0] : all;
  // window: the central (g−2)×(g−2) patches (+ CLS), like the reference's window_6 on an 8×8 grid.
  const [gh, gw] = grid && grid.length === 2 && grid[0] * grid[1] === tokens - offset ? grid : [Math.round(Math.sqrt(tokens - offset)), Math.round(Math.sqrt(tokens - offset))];
  if (gh * gw !== tokens - offset || gh < 3 || gw < 3) return all;
  const kept = hasCls ? [0] : [];
  for (let y = 1; y < gh - 1; y++) for (let x = 1; x < gw - 1; x++) kept.push(offset + y * gw + x);
  return kept;
}

function toNeuronMajor(r: Raw, layout: Layout, o: CaptureOptions): NeuronActs {
  // tokens: [N, T, D]; nchw: [N, D, h, w] (patch tokens only, no CLS); vector: [N, D]
  const neurons = layout === 'nchw' ? r.dims[1] : r.dims[r.dims.length - 1];
  const tokens = layout === 'tokens' ? r.dims[r.dims.length - 2] : layout === 'vector' ? 1 : r.dims.slice(2).reduce((a, b) => a * b, 1);
  const kept = layout === 'tokens' ? keptTokens(tokens, o.tokenFilter, o.hasCls, o.grid)
    : layout === 'vector' ? [0] : keptTokens(tokens, o.tokenFilter === 'window' ? 'window' : 'all', false, o.grid);
  // Sample list: (chunk, sample, token) with padding tokens dropped.
  const picks: number[][] = [];
  let S = 0;
  r.chunks.forEach((c, ci) => {
    const bn = c.length / (tokens * neurons);
    const mask = layout === 'tokens' ? r.masks[ci] : undefined;
    const list: number[] = [];
    for (let b = 0; b < bn; b++) {
      for (const t of kept) if (!mask || mask.length !== bn * tokens || mask[b * tokens + t]) list.push(b * tokens + t);
    }
    picks.push(list);
    S += list.length;
  });
  const X = new Float32Array(neurons * S);
  let s = 0;
  r.chunks.forEach((c, ci) => {
    for (const bt of picks[ci]) {
      if (layout === 'nchw') {
        const b = Math.floor(bt / tokens), t = bt % tokens;
        for (let d = 0; d < neurons; d++) X[d * S + s] = c[(b * neurons + d) * tokens + t];
      } else {
        const base = bt * neurons;
        for (let d = 0; d < neurons; d++) X[d * S + s] = c[base + d];
      }
      s++;
    }
  });
  if (o.standardize) standardizeRows(X, neurons, S);
  return { X, neurons, samples: S };
}

/** (x − mean) / (std + 1e-9) per neuron, unbiased std — the reference's transform. */
export function standardizeRows(X: Float32Array, rows: number, cols: number): void {
  for (let d = 0; d < rows; d++) {
    const o = d * cols;
    let mean = 0;
    for (let s = 0; s < cols; s++) mean += X[o + s];
    mean /= cols;
    let v = 0;
    for (let s = 0; s < cols; s++) { const z = X[o + s] - mean; v += z * z; }
    const std = Math.sqrt(v / Math.max(1, cols - 1));
    const inv = 1 / (std + 1e-9);
    for (let s = 0; s < cols; s++) X[o + s] = (X[o + s] - mean) * inv;
  }
}

function absMeanOf(r: Raw, layout: Layout): Float64Array {
  const neurons = layout === 'nchw' ? r.dims[1] : r.dims[r.dims.length - 1];
  const out = new Float64Array(neurons);
  let count = 0;
  for (const c of r.chunks) {
    if (layout !== 'nchw') {
      for (let k = 0; k < c.length; k++) out[k % neurons] += Math.abs(c[k]);
    } else {
      const per = r.dims.slice(2).reduce((a, b) => a * b, 1);
      for (let k = 0; k < c.length; k++) out[Math.floor(k / per) % neurons] += Math.abs(c[k]);
    }
    count += c.length / neurons;
  }
  for (let d = 0; d < neurons; d++) out[d] /= Math.max(1, count);
  return out;
}
