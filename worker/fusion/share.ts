// Work shared between fusions of the same models on the same calibration samples — the auto-tune's trials and the
// final fusion (issue 31): the captured activations of every model and, once a regmean recipe has tapped them, the
// Gram matrices of the refit's layer inputs. An entry is keyed by everything that determines them (the model files,
// the data file and how many of its first samples, batch size, token filter, standardisation, token budget and
// seed, the provider, whether mean |activation|s were kept); the alignment and the refit only read them, so a
// fusion that reuses an entry writes the same bytes as one that captured afresh (test/fusion/share.test.ts).
// Bounded: one entry (a miss drops the others before capturing), only in-memory captures (a staged one is never
// held), and none larger than maxBytes.
// The entry also keeps the alignment's cost matrices computed from its activations (CostCache): trials of other
// solvers, Q/K modes or refits on the same capture ask for the same activation costs again. They are keyed by the
// identity of the held activation matrices (never changed while the entry holds them) and the cost's settings, and
// handed out as copies, so a fusion that reads one gets the bytes it would have computed.
import type { OnnxModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import type { ActivationStore } from './activations';
import type { CaptureGrams } from './refitgrams';

export interface SharedCapture {
  acts: (ActivationStore | undefined)[];
  activationBytes: number;
  grams?: CaptureGrams;
  /** Cost matrices computed from these activations (filled by the fusions that read them). */
  costs?: CostCache;
}

/** A computed cost matrix and its normalisation scale. */
export interface CostValue {
  cost: Float64Array;
  scale: number;
}

/**
 * Cost matrices by the identity of their two feature matrices and a settings key (metric, normalisation, engine,
 * shape), for features that are matrices of the held activation stores only (never changed while the entry holds
 * them; anything else, e.g. weights or features built per call, is computed as usual). Dropped with the entry.
 * Values are copied in and out (a caller may write into the matrix it gets).
 */
export class CostCache {
  private readonly byX = new Map<object, Map<object, Map<string, CostValue>>>();
  bytes = 0;
  hits = 0;
  misses = 0;

  constructor(
    private readonly stores: readonly (ActivationStore | undefined)[],
    readonly maxBytes = 256 * 2 ** 20,
  ) {}

  /** Whether both feature matrices belong to the held activations (only those are cached). */
  covers(X: object, Y: object): boolean {
    return this.stores.some((s) => s?.holds?.(X)) && this.stores.some((s) => s?.holds?.(Y));
  }

  get(X: object, Y: object, key: string): CostValue | undefined {
    const v = this.byX.get(X)?.get(Y)?.get(key);
    if (v) this.hits++;
    else this.misses++;
    return v && { cost: Float64Array.from(v.cost), scale: v.scale };
  }

  /** Keeps a copy of `value` while the bound allows. */
  put(X: object, Y: object, key: string, value: CostValue): void {
    if (this.bytes + value.cost.byteLength > this.maxBytes) return;
    let byY = this.byX.get(X);
    if (!byY) this.byX.set(X, (byY = new Map()));
    let byKey = byY.get(Y);
    if (!byKey) byY.set(Y, (byKey = new Map()));
    if (byKey.has(key)) return;
    byKey.set(key, { cost: Float64Array.from(value.cost), scale: value.scale });
    this.bytes += value.cost.byteLength;
  }

  clear(): void {
    this.byX.clear();
    this.bytes = 0;
  }
}

export class CaptureShare {
  private entry?: { key: string; value: SharedCapture };
  /** Captures reused, and captured afresh while this share was passed (for the record and the tests). */
  hits = 0;
  misses = 0;

  constructor(readonly maxBytes = 512 * 2 ** 20) {}

  static key(models: OnnxModel[], calib: Dataset, options: Record<string, unknown>): string {
    return JSON.stringify({ models: models.map((m) => m.file), data: calib.source, ...options });
  }

  /** The entry for `key`, when it has what the caller needs (the Grams when `grams` is asked for). */
  get(key: string, grams: boolean): SharedCapture | undefined {
    const e = this.entry;
    const hit = e && e.key === key && (!grams || e.value.grams?.ready) ? e.value : undefined;
    if (hit) this.hits++;
    else this.misses++;
    return hit;
  }

  /** The cost cache of the entry held under `key` (none when nothing, or something else, is held). */
  costsFor(key: string): CostCache | undefined {
    return this.entry?.key === key ? this.entry.value.costs : undefined;
  }

  /** The held entry's cost cache counts (for the record and the tests). */
  costStats(): { hits: number; misses: number; bytes: number } | undefined {
    const c = this.entry?.value.costs;
    return c && { hits: c.hits, misses: c.misses, bytes: c.bytes };
  }

  /** Drops what is held (before a capture of something else, or at the end). */
  async clear(): Promise<void> {
    const e = this.entry;
    this.entry = undefined;
    for (const a of e?.value.acts ?? []) a?.release?.();
    e?.value.costs?.clear();
    await e?.value.grams?.release();
  }

  /** After seal(), nothing more is held (the last fusion releases its own captures as soon as it can). */
  sealed = false;

  seal(): void {
    this.sealed = true;
  }

  /** Holds a capture when it is small enough; says whether it did (the share then owns its release). */
  offer(key: string, value: SharedCapture): boolean {
    if (this.sealed || value.activationBytes > this.maxBytes || this.entry) return false;
    this.entry = { key, value: { ...value, costs: value.costs ?? new CostCache(value.acts) } };
    return true;
  }
}
