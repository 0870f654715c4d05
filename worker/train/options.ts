// Finetune options, each named once: request field, CLI flag, domain, default and help. The CLI's finetune flags
// (`otfuse finetune`, `otfuse fuse --finetune`), their parsing, the usage text and the ranges it prints, the engine's
// request checks on entry (worker/numbers.ts NUMBER_RULES, exit 2 outside the domain) and the finetune's defaults
// all derive from FINETUNE_OPTIONS. The domain is a NumberRule (worker/numbers.ts) written inline, so this table
// imports nothing but types and can travel to the extension (worker/client re-exports it).
import type { FinetuneOptions } from '../types';

export interface FinetuneOption {
  /** The CLI flag (`--flag N`). */
  flag: string;
  integer?: boolean;
  min?: number;
  /** Strict lower bound. */
  above?: number;
  max?: number;
  /** Strict upper bound. */
  below?: number;
  /** The value when the request leaves it out; none: derived from the run (see `what`). */
  default?: number;
  /** Help text (also the range's description in error messages). */
  what: string;
  /** Also a flag of `otfuse fuse --finetune` (the finetune stage of a fusion run). */
  fuse?: boolean;
  /** Only meaningful with distillation teachers (`--teacher`); given without one it is a usage error. */
  distill?: boolean;
}

export const FINETUNE_OPTIONS = {
  epochs: { flag: 'epochs', above: 0, max: 1e6, default: 1, what: 'epochs (fractions allowed; default 1 unless --max-steps is given)', fuse: true },
  maxSteps: { flag: 'max-steps', integer: true, min: 1, max: 1e9, what: 'training steps (default: all of --epochs)', fuse: true },
  lr: { flag: 'lr', above: 0, max: 1e3, default: 2e-4, what: 'learning rate', fuse: true },
  // --batch-size is also the batch of evaluation and activation capture (eval, fuse): one domain for all of them.
  batchSize: { flag: 'batch-size', integer: true, min: 1, max: 1 << 20, default: 128, what: 'samples per batch', fuse: true },
  weightDecay: { flag: 'weight-decay', min: 0, max: 1e3, default: 0.01, what: 'weight decay' },
  warmupSteps: {
    flag: 'warmup-steps',
    integer: true,
    min: 0,
    max: 1e9,
    what: 'warmup steps (default: 5 % of the steps, at least min(4, a quarter of them), at most 100)',
  },
  labelSmoothing: { flag: 'label-smoothing', min: 0, below: 1, default: 0, what: 'label smoothing' },
  clipNorm: { flag: 'clip-norm', min: 0, max: 1e6, default: 1, what: 'gradient clipping norm (0 = off)' },
  seed: { flag: 'seed', integer: true, min: 0, max: 2 ** 31 - 1, default: 0, what: 'random seed' },
  kdTemp: { flag: 'kd-temp', min: 0.05, max: 100, default: 2, what: 'distillation temperature', fuse: true, distill: true },
  memoryLimit: {
    flag: 'memory-limit',
    above: 0,
    max: 1 << 20,
    what: "GiB a training step may need (default: the machine's memory); a step whose estimated floor is over it is refused before training",
    fuse: true,
  },
  kdAlpha: { flag: 'kd-alpha', min: 0, max: 1, default: 0.5, what: 'weight of the distillation loss', fuse: true, distill: true },
  trunkEpochs: {
    flag: 'trunk-epochs',
    integer: true,
    min: 0,
    max: 10000,
    // chosen on validation (bench/quality/trunk-epochs.bench.ts): 20 / 40 / 80 / 160 rose on both trainings of the non-IID pair
    default: 160,
    what: "partial models (fuse --merge-layers): epochs of trunk distillation first, the shared trunk trained on the training images so every branch sees its parent's own stream at the cut (teachers = the parents; 0 = off)",
    fuse: true,
    distill: true,
  },
} as const satisfies { [K in keyof FinetuneOptions]?: FinetuneOption };

export type FinetuneOptionName = keyof typeof FINETUNE_OPTIONS;

type Defaulted = { [K in FinetuneOptionName as (typeof FINETUNE_OPTIONS)[K] extends { default: number } ? K : never]: number };

/** The defaults of the options that have one (the others are derived at run time). */
export const FINETUNE_DEFAULTS = Object.fromEntries(
  Object.entries(FINETUNE_OPTIONS as Record<string, FinetuneOption>)
    .filter(([, o]) => o.default !== undefined)
    .map(([k, o]) => [k, o.default]),
) as Defaulted;

/** The registry as a list, in its order. */
export function finetuneOptions(): { field: FinetuneOptionName; option: FinetuneOption }[] {
  return (Object.entries(FINETUNE_OPTIONS) as [FinetuneOptionName, FinetuneOption][]).map(([field, option]) => ({ field, option }));
}
