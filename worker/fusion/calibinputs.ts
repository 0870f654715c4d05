// The calibration data as a capture sees it before any stage runs: which dataset array feeds each graph input, the
// attention mask (which tokens are real), and how many samples a capture passes through the model — all of them,
// unless the token budget would keep only a small share of their (sample, token) pairs.
import { onnx } from 'onnx-proto';
import { OnnxModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import type { ModelPlan } from '../graph/analyze';
import { ModelRunner, type InputBinding } from '../runtime/runner';
import { DEFAULT_TOKEN_BUDGET } from './recipe';
import { keptTokens } from './samples';
import type { TokenFilter } from './registry';

/** Token validity [samples × tokens] (1 = a real token), from the attention mask input. */
export interface TokenMask {
  data: Uint8Array;
  tokens: number;
}

/**
 * Candidate (sample, token) pairs per pair the token budget keeps, from which more samples are not passed: beyond
 * it a larger calibration set only changes which pairs the budget's seeded draw keeps, at one forward pass per model
 * per sample (ViT-B: 200 images are 39,400 pairs for a budget of 8,192; 84 images give the draw 2 × 8,192).
 */
export const CANDIDATES_PER_KEPT = 2;

/** Binds the dataset's arrays to the graph inputs named (a probe model of those inputs lets the session layer check them). */
export async function bindCalibInputs(model: OnnxModel, inputNames: readonly string[], dataset: Dataset): Promise<InputBinding> {
  const inputs = (model.graph.input ?? []).filter((v) => inputNames.includes(v.name ?? ''));
  const probe = new OnnxModel(
    onnx.ModelProto.create({
      irVersion: model.proto.irVersion,
      opsetImport: model.proto.opsetImport,
      graph: onnx.GraphProto.create({
        name: 'inputs',
        input: inputs,
        node: inputs.map((v, i) => onnx.NodeProto.create({ opType: 'Identity', input: [v.name!], output: [`probe_${i}`] })),
        output: inputs.map((_, i) => onnx.ValueInfoProto.create({ name: `probe_${i}` })),
      }),
    }),
    model.file,
  );
  const runner = await ModelRunner.create(probe, { provider: 'cpu' });
  try {
    return runner.bind(dataset, { checkLabels: false });
  } finally {
    await runner.release();
  }
}

/** The first `total` samples' attention mask, read batch by batch (null: the graph has no attention_mask input). */
export function readTokenMask(dataset: Dataset, binding: InputBinding, total: number, batchSize: number): TokenMask | null {
  const name = binding.attention_mask;
  if (!name) return null;
  let data: Uint8Array | undefined,
    tokens = 0;
  for (let start = 0; start < total; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, total - start) }, (_, i) => start + i);
    const feed = dataset.take(idx).feeds[name];
    tokens = feed.dims[feed.dims.length - 1];
    data ??= new Uint8Array(total * tokens);
    const m = feed.data as ArrayLike<number | bigint>;
    for (let k = 0; k < m.length; k++) data[start * tokens + k] = Number(m[k]) !== 0 ? 1 : 0;
  }
  return data ? { data, tokens } : null;
}

export interface PassOptions {
  samples: number;
  batchSize: number;
  tokenFilter: TokenFilter;
  tokenBudget?: number;
}

/** The graph's inputs (not initializers). */
export function graphInputs(model: OnnxModel): string[] {
  const inits = new Set((model.graph.initializer ?? []).map((t) => t.name));
  return (model.graph.input ?? []).map((v) => v.name ?? '').filter((n) => n && !inits.has(n));
}

/**
 * How many calibration samples a capture of `model` passes: the first n whose candidate pairs (kept by the token
 * filter, real tokens only where the data has an attention mask; the fewest over the plan's token-shaped tensors)
 * reach CANDIDATES_PER_KEPT × the token budget, or every sample asked for (up to the data set's size) when they do
 * not. Tensors with one value per sample (a pooler) see the n samples passed. With no budget (0), every sample.
 */
export async function captureSampleCount(model: OnnxModel, plan: ModelPlan, dataset: Dataset, o: PassOptions): Promise<number> {
  const total = Math.min(o.samples, dataset.size);
  const budget = o.tokenBudget ?? DEFAULT_TOKEN_BUDGET;
  if (budget <= 0 || total <= 2) return total;
  const need = CANDIDATES_PER_KEPT * budget;
  const e = plan.embedding;
  if (e.kind === 'patch') {
    const grid = e.patch.grid;
    const patches = grid ? grid[0] * grid[1] : undefined;
    if (!patches) return total;
    const perSample = Math.min(
      keptTokens(patches + (e.cls ? 1 : 0), o.tokenFilter, !!e.cls, grid).length,
      keptTokens(patches, o.tokenFilter === 'window' ? 'window' : 'all', false, grid).length,
    );
    return Math.min(total, Math.max(2, Math.ceil(need / perSample)));
  }
  // Token ids: the sequence length from the data, the real tokens from its mask.
  const binding = await bindCalibInputs(model, graphInputs(model), dataset);
  const mask = readTokenMask(dataset, binding, total, o.batchSize);
  const first = dataset.take([0]).feeds;
  const tokens = mask?.tokens ?? Math.max(...Object.values(binding).map((name) => first[name].dims[first[name].dims.length - 1]));
  const kept = keptTokens(tokens, o.tokenFilter, true);
  let candidates = 0;
  for (let b = 0; b < total; b++) {
    for (const t of kept) if (!mask || mask.data[b * tokens + t]) candidates++;
    if (candidates >= need) return Math.max(2, b + 1);
  }
  return total;
}
