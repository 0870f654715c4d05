// Does a data file fit a model? Compares the model's inputs (names, shapes without the batch axis) with the
// arrays a data file holds, so pickers can rank and filter candidates and show N and shapes. Pure (no vscode).
import type { DataDescription, ModelSummary } from '../worker/types';

export interface DataFit {
  /** 2: every model input has an array of its name (or the single input gets `x`) with its shape; 1: unknown
   * (the file could not be described); 0: does not fit. */
  score: 0 | 1 | 2;
  /** Why it does not fit, or what it holds ("N 200 · x [1, 28, 28]"). */
  reason: string;
}

const shapeText = (s: readonly (number | string)[]) => `[${s.join(', ')}]`;

export function describeArrays(d: DataDescription): string {
  if (d.error || !d.arrays) return d.error ?? 'not inspected';
  return `N ${d.size} · ${d.arrays.map((a) => `${a.name} ${shapeText(a.sampleShape)}`).join(' · ')}`;
}

/** Model input shapes without the batch axis match a sample shape where both are numbers. */
function shapeFits(input: readonly (number | string)[], sample: readonly number[]): boolean {
  const rest = input.slice(1);
  if (rest.length !== sample.length) return false;
  return rest.every((d, k) => typeof d !== 'number' || d <= 0 || d === sample[k]);
}

/** An HF architecture class whose logits predict the next token (GPT2LMHeadModel, LlamaForCausalLM, …). */
export const isCausalLmArchitecture = (architecture: string | undefined) => !!architecture && /(ForCausalLM|LMHeadModel)$/.test(architecture);

/** Text a causal language model reads (kept in step with worker/data/causal.ts isCausalTextFile). */
export const isCausalTextFile = (file: string) => /\.(txt|jsonl)$/i.test(file);

/** Text for a causal LM: the engine tokenizes it with the model folder's tokenizer, so describeData (which has no
 * tokenizer) cannot say more than its size; a plain .txt fits no other model. */
function textFit(d: DataDescription, causalLm: boolean): DataFit | undefined {
  if (!isCausalTextFile(d.path)) return undefined;
  if (causalLm) {
    if (d.error?.startsWith('larger than')) return { score: 0, reason: `cannot be read: ${d.error}` };
    return { score: 2, reason: 'text for next-token prediction: tokenized by the model folder, cut into blocks; scored by perplexity (lower is better)' };
  }
  if (/\.txt$/i.test(d.path)) return { score: 0, reason: 'plain text: only a causal language model (a GPT-2 or Llama folder) reads it' };
  return undefined;
}

export function fitOf(inputs: ModelSummary['inputs'] | undefined, d: DataDescription, options: { causalLm?: boolean } = {}): DataFit {
  const text = textFit(d, options.causalLm === true);
  if (text) return text;
  // A file the engine cannot read does not fit anything (listed under "Do not fit" with the reason).
  if (d.error) return { score: 0, reason: `cannot be read: ${d.error}` };
  if (!d.arrays) return { score: 1, reason: 'not inspected' };
  if (!inputs?.length) return { score: 1, reason: describeArrays(d) };
  const byName = new Map(d.arrays.map((a) => [a.name, a]));
  for (const input of inputs) {
    const a = byName.get(input.name) ?? (inputs.length === 1 ? byName.get('x') : undefined);
    if (!a) return { score: 0, reason: `no array '${input.name}' (has ${d.arrays.map((x) => x.name).join(', ')})` };
    if (!shapeFits(input.shape, a.sampleShape))
      return {
        score: 0,
        reason: `'${a.name}' is ${shapeText(a.sampleShape)} per sample, the model's '${input.name}' needs ${shapeText(input.shape.slice(1))}`,
      };
  }
  return { score: 2, reason: describeArrays(d) };
}

/** A name that suggests held-out data (for the evaluation prompt's default). */
export function looksHeldOut(file: string): boolean {
  return /(^|[\\/_.-])(test|eval|val|valid|validation|heldout|held-out|holdout)([\\/_.\d-]|$)/i.test(file.split(/[\\/]/).pop() ?? file);
}

/** A name that suggests a training split. */
export function looksTraining(file: string): boolean {
  return /(^|[\\/_.-])(train|training)([\\/_.\d-]|$)/i.test(file.split(/[\\/]/).pop() ?? file);
}

/** Orders candidates: fitting first; then (for evaluation) held-out names next to `near` first; then by name. */
export function rankData<T extends { file: string; fit: DataFit }>(items: T[], options: { near?: string; heldOut?: boolean; last?: string } = {}): T[] {
  const dir = (f: string) => f.replace(/[\\/][^\\/]*$/, '');
  const key = (x: T) => [
    -x.fit.score,
    x.file === options.last ? 0 : 1,
    options.heldOut ? (looksHeldOut(x.file) ? 0 : 1) : 0,
    options.near && dir(x.file) === dir(options.near) ? 0 : 1,
  ];
  return [...items].sort((a, b) => {
    const ka = key(a),
      kb = key(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] - kb[i];
    return a.file.localeCompare(b.file);
  });
}
