// Work shared between fusions of the same models on the same calibration samples — the auto-tune's trials and the
// final fusion (issue 31): the captured activations of every model and, once a regmean recipe has tapped them, the
// Gram matrices of the refit's layer inputs. An entry is keyed by everything that determines them (the model files,
// the data file and how many of its first samples, batch size, token filter, standardisation, token budget and
// seed, the provider, whether mean |activation|s were kept); the alignment and the refit only read them, so a
// fusion that reuses an entry writes the same bytes as one that captured afresh (test/fusion/share.test.ts).
// Bounded: one entry (a miss drops the others before capturing), only in-memory captures (a staged one is never
// held), and none larger than maxBytes.
import type { OnnxModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import type { ActivationStore } from './activations';
import type { CaptureGrams } from './refitgrams';

export interface SharedCapture {
  acts: (ActivationStore | undefined)[];
  activationBytes: number;
  grams?: CaptureGrams;
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

  /** Drops what is held (before a capture of something else, or at the end). */
  async clear(): Promise<void> {
    const e = this.entry;
    this.entry = undefined;
    for (const a of e?.value.acts ?? []) a?.release?.();
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
    this.entry = { key, value };
    return true;
  }
}
