// Activation capture with ONNX Runtime. The tensors the alignment plan names are grouped by stage (embedding,
// each block, head); the graph is cut into one subgraph per stage (stages.ts) and each stage runs over the
// calibration batches fed with the cached outputs of the stage before, so a capture costs one forward pass of
// the model however many stages there are. Each captured tensor is written, batch by batch, straight into a
// neuron-major matrix (neurons × kept samples·tokens): token-filtered, padding dropped, optionally capped by a
// token budget (a seeded random subset of the (sample, token) pairs, the same for every model) and
// standardised per neuron.
import * as ort from 'onnxruntime-node';
import { throwIfCancelled, OtfuseError } from '../errors';
import { OnnxModel } from '../onnx/model';
import type { Dataset, Batch } from '../data/dataset';
import { checkFinite, toOrtTensor, type InputBinding } from '../runtime/runner';
import { createOrtSession } from '../runtime/session';
import { resolveProvider, type ProviderChoice } from '../runtime/providers';
import type { ModelPlan } from '../graph/analyze';
import { seededRandom } from '../random';
import { planStages, stageModel, type StagePlan } from './stages';
import { DEFAULT_TOKEN_BUDGET, DEFAULT_TOKEN_SEED } from './recipe';
import { absorb, keptTokens, sinkBytes, standardizeRows, normalizeLayout, type CaptureSpec, type Layout, type Sink } from './samples';
import { STREAM_MEMORY_BYTES, StreamStore, type StreamBudget, type StreamInfo } from './streams';
import { bindCalibInputs, readTokenMask, type TokenMask } from './calibinputs';

export { DEFAULT_TOKEN_BUDGET, DEFAULT_TOKEN_SEED };

export type { CaptureSpec, Layout };

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
  /** Frees what later stages would have read (staged capture); the store is not used after. */
  release?(): void;
  /** Whether `X` is one of the matrices this store holds for good (a whole capture's; share.ts caches costs of those). */
  holds?(X: object): boolean;
}

/** Every tensor whose activations the fusion of this plan can use. */
export function captureSpecs(plan: ModelPlan): CaptureSpec[] {
  const seen = new Set<string>();
  return captureGroups(plan)
    .flat()
    .filter((s) => (seen.has(s.tensor) ? false : (seen.add(s.tensor), true)));
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
  const groups: CaptureSpec[][] = [
    e.kind === 'patch'
      ? [
          { tensor: e.patch.out, layout: 'nchw' },
          { tensor: e.out, layout: 'tokens' },
        ]
      : [
          { tensor: e.sum, layout: 'tokens' },
          { tensor: e.out, layout: 'tokens' },
        ],
  ];
  for (const b of plan.blocks) {
    groups.push(
      [b.input, b.attn.q.out, b.attn.k.out, b.attn.v.out, b.attn.o.out, b.attnAdd, b.fc1.out, b.fc2.out].map((tensor) => ({
        tensor,
        layout: 'tokens' as const,
      })),
    );
  }
  groups.push(plan.head.pooler ? [{ tensor: plan.head.pooler.out, layout: 'vector' }] : []);
  return groups;
}

/** Bytes one model's activations take for every tensor at once (neuron-major float32). */
export function estimateActivationBytes(plan: ModelPlan, samples: number, tokenBudget = DEFAULT_TOKEN_BUDGET): number {
  const tokens = plan.tokens ?? 1;
  let neurons = 0;
  for (const s of captureSpecs(plan)) {
    if (s.layout === 'vector') neurons += plan.hidden / tokens;
    else if (s.tensor === plan.blocks.find((b) => b.fc1.out === s.tensor)?.fc1.out) neurons += plan.mlp;
    else neurons += plan.hidden;
  }
  return neurons * Math.min(tokens * samples, tokenBudget > 0 ? tokenBudget : Infinity) * 4;
}

/**
 * Tokens per capture batch: ONNX Runtime's outputs for one batch (every captured tensor, an MLP one 4× wide) and
 * its working memory scale with it; 2,048 keeps a ViT-B batch (10 images) around 50 MB of outputs, and its capture
 * measured faster than with 4,096 (BENCHMARKS.md, "Scale", fourth and fifth pass; the results do not depend on it).
 */
const TOKENS_PER_BATCH = 2048;

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
  /** Cap on kept samples × tokens per tensor (0 = none; default DEFAULT_TOKEN_BUDGET). */
  tokenBudget?: number;
  /** Seed of the random token subsample (default DEFAULT_TOKEN_SEED). */
  tokenSeed?: number;
  /** Also the mean |activation| per neuron over every token (absMean; default true): only weighted residual
   * policies read it, and it touches every value of every captured tensor. */
  absMeans?: boolean;
  /** Other tensors handed out batch by batch as their stage first computes them (the refit's layer inputs). */
  tap?: CaptureTap;
  /** Bytes of cached stage outputs kept in memory, the rest spooled to a temp file (default STREAM_MEMORY_BYTES). */
  streamMemoryBytes?: number;
}

/**
 * A consumer of graph tensors during capture: each tensor is handed out once per batch, the first time its stage
 * runs (a stage re-run for another model pair is not tapped again), and `stageDone` follows each stage's last batch.
 */
export interface CaptureTap {
  tensors: readonly string[];
  /** `mask`: token validity [count × tokens] of this batch (text models), when the graph has an attention mask;
   * `realTokens`: the valid tokens over all capture samples. */
  batch(
    tensor: string,
    data: Float32Array,
    dims: number[],
    start: number,
    count: number,
    mask: Uint8Array | undefined,
    realTokens: number | undefined,
  ): Promise<void>;
  stageDone(tensors: string[]): Promise<void>;
  /** Taps that no stage computes (graph inputs, initializers): the consumer must get them another way. */
  untapped?(tensors: string[]): void;
}

/** What a capture did, for run.json. */
export interface CaptureStats {
  /** Seconds spent running stage subgraphs and extracting activations. */
  seconds: number;
  /** Process CPU seconds (every thread) over the same spans: comparable on a busy machine. */
  cpuSeconds: number;
  /** Calibration samples each pass runs. */
  samples: number;
  /** Forward passes of the whole model equivalent (1 per capture from stage 0). */
  passes: number;
  /** Largest bytes of captured (neuron-major) matrices held at once. */
  peakBytes: number;
  /** Largest bytes of cached stage outputs (the residual stream between stages) held in memory at once. */
  peakCacheBytes: number;
  /** Per tensor geometry: candidate tokens and kept tokens after the budget. */
  tokens: { candidates: number; kept: number }[];
}

/**
 * An ActivationStore that holds one stage's tensors at a time: `prepare(g)` runs stage g's subgraph over the
 * calibration batches, fed with the cached outputs of stage g−1, and drops the previous stage's matrices and
 * every cached tensor no later stage reads. A capture is one forward pass of the model in total; going back to
 * an earlier stage (the anchor, when a third model is aligned) starts a new pass.
 */
export class StagedActivations implements ActivationStore {
  private readonly engine: CaptureEngine;
  private current?: Collected;
  peakBytes = 0;

  constructor(model: OnnxModel, plan: ModelPlan, dataset: Dataset, options: CaptureOptions) {
    this.engine = new CaptureEngine(model, captureGroups(plan), dataset, options, true, plan.tokens);
  }

  async prepare(stage: number): Promise<void> {
    // The previous stage's matrices are reused for the next one's (same shapes block after block): garbage
    // collection frees large buffers late, and a stage's worth of them lingering doubled the peak.
    if (this.current) this.engine.recycle(this.current);
    this.current = undefined;
    this.current = await this.engine.advanceTo(stage);
    this.peakBytes = this.engine.stats.peakBytes;
  }

  get stats(): CaptureStats {
    return this.engine.stats;
  }

  /** Runs the stages alignment did not need, so that every tap has seen the data. */
  async finishTaps(): Promise<void> {
    if (this.current) this.engine.recycle(this.current);
    this.current = undefined;
    await this.engine.finishTaps();
  }

  /** Frees the captured matrices and cached streams once alignment and taps are done (before the average and refit). */
  release(): void {
    this.current = undefined;
    this.engine.release();
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

/** The graph tensor a capture spec reads (a view's packed source, or the tensor itself). */
const sourceOf = (s: CaptureSpec): string => s.view?.tensor ?? s.tensor;

/** Every tensor of the plan (or `only`) in one forward pass; the store holds them all. */
export async function captureActivations(
  model: OnnxModel,
  plan: ModelPlan | undefined,
  dataset: Dataset,
  options: CaptureOptions,
  only?: CaptureSpec[],
): Promise<ActivationStore & { stats: CaptureStats }> {
  const specs = only ?? captureSpecs(plan!);
  const engine = new CaptureEngine(model, [specs], dataset, options, false, plan?.tokens);
  const store = await engine.advanceTo(0);
  return Object.assign(store, { stats: engine.stats });
}

class Collected implements ActivationStore {
  readonly acts = new Map<string, NeuronActs>();
  readonly absMeans = new Map<string, Float64Array>();
  holds(X: object): boolean {
    for (const v of this.acts.values()) if (v.X === X) return true;
    return false;
  }
  get bytes(): number {
    let b = 0;
    for (const v of this.acts.values()) b += v.X.byteLength;
    return b;
  }
  get(tensor: string): NeuronActs {
    const v = this.acts.get(tensor);
    if (!v) throw new OtfuseError('INTERNAL', `activation '${tensor}' was not captured`);
    return v;
  }
  absMean(tensor: string): Float64Array {
    const v = this.absMeans.get(tensor);
    if (!v) throw new OtfuseError('INTERNAL', `mean |activation| of '${tensor}' was not captured (absMeans off)`);
    return v;
  }
}

class CaptureEngine {
  private readonly plan: StagePlan;
  private stage = -1;
  /** Cached stage outputs (tensor → the store of the stage that produced it), one entry per batch. */
  private cache = new Map<string, StreamStore>();
  private readonly streamBudget: StreamBudget;
  private binding?: InputBinding;
  private masks?: TokenMask | null;
  private readonly picksByGeometry = new Map<string, Int32Array>();
  /** Matrices of a finished stage, handed back for reuse. */
  private pool: Float32Array[] = [];
  /** Stages whose taps have been handed out. */
  private readonly tapped = new Set<number>();
  private realTokens?: number;
  private readonly total: number;
  /** Samples per batch: the recipe's, capped so one batch holds about TOKENS_PER_BATCH tokens. */
  private readonly batch: number;
  readonly stats: CaptureStats = { seconds: 0, cpuSeconds: 0, samples: 0, passes: 0, peakBytes: 0, peakCacheBytes: 0, tokens: [] };

  constructor(
    private readonly model: OnnxModel,
    private readonly groups: CaptureSpec[][],
    private readonly dataset: Dataset,
    private readonly options: CaptureOptions,
    chain: boolean,
    tokens?: number,
  ) {
    const targets = groups.map((g, s) => {
      const t = [...new Set(g.map(sourceOf))];
      // The next block's input is computed here too, so only the residual stream (not the block's last
      // operands) is cached between stages.
      const next = chain ? groups[s + 1]?.[0] : undefined;
      if (next && s + 1 < groups.length - 1) t.push(sourceOf(next));
      return t;
    });
    this.streamBudget = { limit: options.streamMemoryBytes ?? STREAM_MEMORY_BYTES, used: 0 };
    this.plan = planStages(model, targets, options.tap?.tensors);
    if (this.plan.untapped.length) options.tap?.untapped?.(this.plan.untapped);
    this.total = this.stats.samples = Math.min(options.samples, dataset.size);
    this.batch = Math.max(1, Math.min(options.batchSize, Math.floor(TOKENS_PER_BATCH / Math.max(1, tokens ?? 1))));
    if (this.total < options.samples && this.total < 2)
      throw new OtfuseError('BAD_DATA', `need at least 2 calibration samples, the dataset has ${dataset.size}`, { file: dataset.source });
  }

  /** Runs up to the last stage that has untapped taps (their matrices are not kept). */
  async finishTaps(): Promise<void> {
    if (!this.options.tap) return;
    const last = this.plan.parts.reduce((m, p) => (p.taps.length && !this.tapped.has(p.index) ? p.index : m), -1);
    if (last > this.stage) this.recycle(await this.advanceTo(last));
  }

  /** Drops every buffer held for later stages (the pool of matrices, the cached residual streams). */
  release(): void {
    this.pool = [];
    this.clearCache();
    this.stage = -1;
  }

  private clearCache(): void {
    for (const store of new Set(this.cache.values())) store.release();
    this.cache.clear();
  }

  recycle(done: Collected): void {
    for (const v of done.acts.values()) this.pool.push(v.X);
    done.acts.clear();
  }

  private allocate(length: number): Float32Array {
    const k = this.pool.findIndex((x) => x.length === length);
    if (k >= 0) return this.pool.splice(k, 1)[0];
    return new Float32Array(length);
  }

  /** Runs stages up to `stage` and returns that stage's activations. */
  async advanceTo(stage: number): Promise<Collected> {
    if (stage <= this.stage) {
      this.clearCache();
      this.stage = -1;
    }
    const t0 = performance.now(),
      c0 = process.cpuUsage();
    try {
      let out = new Collected();
      while (this.stage < stage) {
        this.stage++;
        out = await this.runStage(this.stage, this.stage === stage);
      }
      return out;
    } finally {
      this.stats.seconds += (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      this.stats.cpuSeconds += (c.user + c.system) / 1e6;
    }
  }

  private async bindInputs(): Promise<InputBinding> {
    this.binding ??= await bindCalibInputs(this.model, this.plan.inputs, this.dataset);
    return this.binding;
  }

  /** Token validity [samples × T] from the attention mask input, read once (null: no mask). */
  private async maskOf(): Promise<TokenMask | null> {
    if (this.masks === undefined) this.masks = readTokenMask(this.dataset, await this.bindInputs(), this.total, this.options.batchSize);
    return this.masks;
  }

  /** The (sample, token) pairs a tensor keeps: filter, padding, then the budget's seeded subsample. */
  private async picksFor(spec: CaptureSpec, tokens: number): Promise<Int32Array> {
    const key = `${spec.layout}/${tokens}`;
    const cached = this.picksByGeometry.get(key);
    if (cached) return cached;
    const o = this.options;
    const kept =
      spec.layout === 'tokens'
        ? keptTokens(tokens, o.tokenFilter, o.hasCls, o.grid)
        : spec.layout === 'vector'
          ? [0]
          : keptTokens(tokens, o.tokenFilter === 'window' ? 'window' : 'all', false, o.grid);
    const mask = spec.layout === 'tokens' ? await this.maskOf() : null;
    const useMask = mask && mask.tokens === tokens ? mask.data : undefined;
    const all: number[] = [];
    for (let b = 0; b < this.total; b++) for (const t of kept) if (!useMask || useMask[b * tokens + t]) all.push(b * tokens + t);
    const budget = o.tokenBudget ?? DEFAULT_TOKEN_BUDGET;
    let picks = Int32Array.from(all);
    if (budget > 0 && all.length > budget) {
      // Partial Fisher–Yates with the recipe's seed: every model draws the same pairs.
      const rand = seededRandom(o.tokenSeed ?? DEFAULT_TOKEN_SEED);
      for (let i = 0; i < budget; i++) {
        const j = i + Math.floor(rand() * (all.length - i));
        const tmp = all[i];
        all[i] = all[j];
        all[j] = tmp;
      }
      picks = Int32Array.from(all.slice(0, budget)).sort();
    }
    this.picksByGeometry.set(key, picks);
    this.stats.tokens.push({ candidates: all.length, kept: picks.length });
    return picks;
  }

  private async runStage(s: number, collect: boolean): Promise<Collected> {
    const part = this.plan.parts[s];
    if (s === 0) this.stats.passes++;
    const specs = collect ? this.groups[s] : [];
    const out = new Collected();
    const sinks = new Map<string, Sink>();
    const liveTypes = new Map<string, StreamInfo>();
    for (const t of part.liveIns) {
      const info = this.cache.get(t)?.info(t);
      if (info) liveTypes.set(t, info);
    }
    const runner = part.nodes.length ? await stageSession(stageModel(this.model, part, liveTypes), this.options.provider) : undefined;
    const binding = part.graphInputs.length ? await this.bindInputs() : {};
    // Only what later stages read is kept across batches; captured tensors go straight into their sinks.
    const keep = part.outputs.filter((t) => this.plan.parts.some((p) => p.index > s && p.liveIns.includes(t)));
    const produced = new StreamStore(this.streamBudget);
    // Taps go out on the first run of a stage only.
    const taps = this.options.tap && !this.tapped.has(s) ? part.taps : [];
    try {
      let batchNo = 0;
      for (let start = 0; start < this.total; start += this.batch, batchNo++) {
        throwIfCancelled(this.options.signal);
        const count = Math.min(this.batch, this.total - start);
        const feeds: Record<string, ort.Tensor> = {};
        if (part.graphInputs.length) {
          const batch: Batch = this.dataset.take(Array.from({ length: count }, (_, i) => start + i));
          checkFinite(batch, this.dataset.source);
          for (const name of part.graphInputs) feeds[name] = toOrtTensor(batch.feeds[binding[name]]);
        }
        for (const t of part.liveIns) feeds[t] = this.cache.get(t)!.get(t, batchNo);
        // A cached batch whose last reader is this stage goes as soon as it has been fed (the next stage's
        // stream is being produced meanwhile: without this both would be held in full).
        const dropAfter = part.release.filter((t) => !specs.some((x) => x.tensor === t));
        let result: Record<string, ort.Tensor> = {};
        if (runner && part.outputs.length) {
          try {
            result = await runner.run(feeds, part.outputs);
          } catch (err) {
            throw new OtfuseError(
              'INTERNAL',
              `ONNX Runtime failed in capture stage ${s}: ${String(err instanceof Error ? err.message : err)
                .split('\n')[0]
                .slice(0, 300)}`,
              { file: this.model.file },
            );
          }
        }
        for (const t of keep) produced.put(t, result[t]);
        for (const t of dropAfter) this.cache.get(t)?.drop(t, batchNo);
        if (taps.length) {
          const mask = await this.maskOf();
          for (const t of taps) {
            const v = result[t];
            if (!v || v.type !== 'float32')
              throw new OtfuseError('INTERNAL', `capture stage ${s} did not produce float tensor '${t}'`, { file: this.model.file });
            const m = mask ? mask.data.subarray(start * mask.tokens, (start + count) * mask.tokens) : undefined;
            if (mask && this.realTokens === undefined) this.realTokens = mask.data.reduce((a, b) => a + b, 0);
            await this.options.tap!.batch(t, v.data as Float32Array, v.dims.map(Number), start, count, m, this.realTokens);
          }
        }
        for (const spec of specs) {
          const raw = result[sourceOf(spec)] ?? feeds[sourceOf(spec)];
          if (!raw) throw new OtfuseError('INTERNAL', `capture stage ${s} did not produce '${sourceOf(spec)}'`, { file: this.model.file });
          // Sequence-first tensors and views into packed tensors are brought to [batch, tokens, …] first.
          const tensor =
            spec.view || spec.seqFirst
              ? normalizeLayout(raw.data as Float32Array, raw.dims.map(Number), spec)
              : { data: raw.data as Float32Array, dims: raw.dims.map(Number) };
          let sink = sinks.get(spec.tensor);
          if (!sink) {
            const dims = tensor.dims;
            const neurons = spec.layout === 'nchw' ? dims[1] : dims[dims.length - 1];
            const tokens = spec.layout === 'tokens' ? dims[dims.length - 2] : spec.layout === 'vector' ? 1 : dims.slice(2).reduce((a, b) => a * b, 1);
            sink = {
              spec,
              neurons,
              tokens,
              picks: await this.picksFor(spec, tokens),
              cursor: 0,
              abs: new Float64Array(neurons),
              absCount: 0,
              withAbs: this.options.absMeans !== false,
            };
            sink.X = this.allocate(neurons * sink.picks.length); // every entry is written below
            sinks.set(spec.tensor, sink);
          }
          absorb(sink, tensor.data as Float32Array, start, count);
        }
        this.stats.peakCacheBytes = Math.max(this.stats.peakCacheBytes, this.streamBudget.used);
        this.stats.peakBytes = Math.max(this.stats.peakBytes, sinkBytes(sinks));
      }
    } catch (err) {
      produced.release();
      throw err;
    } finally {
      await runner?.release();
    }
    if (taps.length) {
      this.tapped.add(s);
      await this.options.tap!.stageDone(taps);
    }
    for (const t of part.release) {
      this.cache.get(t)?.delete(t);
      this.cache.delete(t);
    }
    this.pool = []; // what this stage did not reuse goes
    for (const t of keep) this.cache.set(t, produced);
    for (const [tensor, sink] of sinks) {
      const S = sink.picks.length;
      if (this.options.standardize) standardizeRows(sink.X!, sink.neurons, S);
      for (let d = 0; d < sink.neurons; d++) sink.abs[d] /= Math.max(1, sink.absCount);
      out.acts.set(tensor, { X: sink.X!, neurons: sink.neurons, samples: S });
      if (sink.withAbs) out.absMeans.set(tensor, sink.abs);
    }
    return out;
  }
}

/**
 * A session for one stage. No CPU memory arena: each stage's session lives for one pass over the data, and an
 * arena per stage left its high-water mark behind in the process (RSS grew by ~50 MB per ViT-S stage).
 */
async function stageSession(model: OnnxModel, provider: ProviderChoice | undefined): Promise<ort.InferenceSession> {
  const used = (await resolveProvider(provider ?? 'auto')).used;
  try {
    return await createOrtSession(model.toBytes(), { providers: [used], memArena: false });
  } catch (err) {
    throw new OtfuseError(
      'BAD_MODEL',
      `ONNX Runtime cannot load capture stage: ${String(err instanceof Error ? err.message : err)
        .split('\n')[0]
        .slice(0, 300)}`,
      { file: model.file },
    );
  }
}
