// A finetune's memory, estimated before the first step from the shape probe (probe.ts), so that a finetune that cannot
// fit is refused with what to change instead of being killed by the kernel minutes later. A causal LM read at the
// tokenizer's model_max_length is the common case: GPT-2-small at 4 × 1024 tokens was killed at 22 GB here, where
// 4 × 128 runs in 4.1 GiB.
//
// Two peaks, each from the bytes of every node output of a probe run (the forward pass's intermediates):
// - the shape probe itself, which runs three samples with every intermediate exposed as an output (ONNX Runtime's
//   buffer and the returned copy): PROBE_FACTOR × its bytes, plus the model twice (the loaded proto and the session);
// - a training step: STEP_FACTOR × the intermediates scaled from the probe's rows to the batch (the backward pass
//   keeps most of them and its own gradients come and go on top), plus parameters, gradients and AdamW's two
//   moments (float32).
// The factors were measured on GPT-2-small (124M) at 4 × 128 / 256 / 512 tokens (peak RSS against the probe's bytes:
// 2.05–2.07 for the probe, 1.26–1.28 for the step). The limit is what this process can still take (the machine's
// available memory plus what the process holds), or --memory-limit. Long sequences are judged before the full probe
// from three short probes (sequenceProbeBytes), since the full probe is itself one of the peaks.
import os from 'node:os';
import { OtfuseError } from '../errors';
import { bytesPerElement, type OnnxModel } from '../onnx/model';
import * as ort from 'onnxruntime-node';
import { probeShapesEach, type ProbeFeeds, type TensorInfo } from './probe';

/** Bytes of every node output of one probe run (initializers and graph inputs excluded). */
export function probeActivationBytes(model: OnnxModel, info: Map<string, TensorInfo>): number {
  let bytes = 0;
  for (const node of model.nodes) {
    for (const out of node.output ?? []) {
      const t = out ? info.get(out) : undefined;
      if (!t) continue;
      bytes += t.dims.reduce((a, d) => a * d, 1) * bytesPerElement(t.dataType);
    }
  }
  return bytes;
}

/** Lengths of the short probes that the sequence estimate extrapolates from. */
export const SHORT_PROBE = [16, 32, 64] as const;

/**
 * probeActivationBytes at `length` tokens, extrapolated from three short probes (SHORT_PROBE), so that a long sequence is
 * judged before the full probe (which itself holds every intermediate of three samples). A transformer's intermediates
 * are linear in the length (activations, logits) or quadratic (attention scores), some constant: bytes(t) = a + b·t + c·t² through the
 * three short runs. Token-id feeds [rows, length] are cut to their first t tokens. Undefined when the model does not run
 * at a shorter length (a length baked into the graph): the full probe then decides.
 */
export async function sequenceProbeBytes(
  model: OnnxModel,
  feeds: ProbeFeeds,
  length: number,
  lengths: readonly [number, number, number] = SHORT_PROBE,
): Promise<number | undefined> {
  const [t1, t2, t3] = lengths;
  if (length <= t3) return undefined;
  const cut = (t: number): ProbeFeeds =>
    Object.fromEntries(
      Object.entries(feeds).map(([name, f]) => {
        if (f.dims.length !== 2 || f.dims[1] !== length || (f.type !== 'int64' && f.type !== 'int32')) return [name, f];
        const rows = f.dims[0];
        const src = f.data as BigInt64Array | Int32Array;
        const data = src instanceof BigInt64Array ? new BigInt64Array(rows * t) : new Int32Array(rows * t);
        for (let r = 0; r < rows; r++) (data as Int32Array).set((src as Int32Array).subarray(r * length, r * length + t), r * t);
        return [name, new ort.Tensor(f.type, data, [rows, t])];
      }),
    );
  let infos: Map<string, TensorInfo>[];
  try {
    infos = await probeShapesEach(model, lengths.map(cut));
  } catch {
    return undefined;
  }
  const [y1, y2, y3] = infos.map((info) => probeActivationBytes(model, info));
  // y = a + b·t + c·t² through the three runs (divided differences).
  const d12 = (y2 - y1) / (t2 - t1);
  const d23 = (y3 - y2) / (t3 - t2);
  const c = (d23 - d12) / (t3 - t1);
  const b = d12 - c * (t1 + t2);
  const a = y1 - b * t1 - c * t1 * t1;
  return Math.max(y3, a + b * length + c * length * length);
}

export interface StepMemoryInput {
  /** probeActivationBytes of the probe run (or its estimate), and the rows it ran on. */
  probeBytes: number;
  probeRows: number;
  batch: number;
  /** Trainable float32 parameters (the model's float parameters before the graph is built). */
  params: number;
  /** Tokens per sample of the training data (sequence models), for the message. */
  sequenceLength?: number;
  /** The limit in bytes (default: available memory + this process's resident set). */
  limitBytes?: number;
  file?: string;
}

export interface StepMemory {
  /** Estimated peak bytes of the shape probe and of a training step. */
  probe: number;
  step: number;
  limit: number;
}

export const PROBE_FACTOR = 2.1;
export const STEP_FACTOR = 1.3;
const MIB = 1024 ** 2;
const GIB = 1024 ** 3;
/** Bytes for a message: MiB under 1 GiB (small models), else GiB. */
const size = (b: number) => (b < GIB ? `${(b / MIB).toFixed(1)} MiB` : `${(b / GIB).toFixed(1)} GiB`);

/** The finetune's two memory peaks; refuses (BAD_USAGE, nothing started) when either is over the limit. */
export function checkStepMemory(input: StepMemoryInput): StepMemory {
  const perRow = input.probeBytes / Math.max(1, input.probeRows);
  const weights = input.params * 4;
  const probe = PROBE_FACTOR * input.probeBytes + 2 * weights;
  const optimizer = 4 * weights;
  const step = STEP_FACTOR * perRow * input.batch + optimizer;
  const limit = input.limitBytes ?? os.freemem() + process.memoryUsage().rss;
  const where = input.limitBytes === undefined ? 'available to this process' : 'allowed by --memory-limit';
  const seq = input.sequenceLength ? `, ${input.sequenceLength} tokens per sample` : '';
  const shorter = input.sequenceLength ? 'lower --max-length (attention grows with the square of the length)' : '';
  if (probe > limit) {
    throw new OtfuseError(
      'BAD_USAGE',
      `probing the training graph's shapes needs about ${size(probe)} (${input.probeRows} samples${seq}), over the ${size(limit)} ${where}: ` +
        `${shorter || 'the model is too large for this memory'}; nothing was trained`,
      { file: input.file },
    );
  }
  if (step > limit) {
    const fitBatch = Math.floor((limit - optimizer) / (STEP_FACTOR * perRow));
    const advice = [fitBatch >= 1 ? `lower --batch-size to ${fitBatch} or less` : '', shorter].filter(Boolean).join(' or ');
    throw new OtfuseError(
      'BAD_USAGE',
      `a training step needs about ${size(step)} (batch ${input.batch}${seq}: ${size(step - optimizer)} of activations, ` +
        `${size(optimizer)} of parameters, gradients and AdamW state), over the ${size(limit)} ${where}: ` +
        `${advice || 'even one sample does not fit'}; nothing was trained`,
      { file: input.file },
    );
  }
  return { probe, step, limit };
}
