// Training-related graphs derived from an inference graph:
// - the gradient graph (loss + gradients as outputs, parameters as inputs) used by gradient checks,
// - the training-step graph (forward + loss + backward in one ONNX graph) reading the flat parameter vector and
//   returning the flat gradient and its norm (AdamW runs on the host, in place: adamw.ts),
// - the evaluation graph (forward with the flat parameter vector as an input).
import { onnx } from 'onnx-proto';
import { OtfuseError } from '../errors';
import { cloneForWeights } from '../onnx/params';
import { OnnxModel, dimsOf, isFloatTensor } from '../onnx/model';
import { A, DT, GraphBuilder } from './builder';
import { IGNORE_LABEL } from '../data/dataset';
import { emitBackward, parametersOnGradientPath } from './autodiff';
import { ProbeFeeds, TensorInfo, defaultProbeFeeds, probeShapes } from './probe';
import { probeActivationBytes } from './memory';

export type LossKind = 'cross-entropy' | 'weighted-sum';

export interface ParamSlot {
  name: string;
  dims: number[];
  offset: number;
  size: number;
  /** Whether AdamW's decoupled weight decay applies (matrices, kernels, embeddings; not biases/norms). */
  decay: boolean;
}

export interface ParamLayout {
  slots: ParamSlot[];
  total: number;
  /** Slots with decay come first: [0, decayed) decays, the rest does not. */
  decayed: number;
}

/** Float initializers with more than one element: weights, biases, norms, embeddings. */
export function trainableParameters(model: OnnxModel): string[] {
  return (model.graph.initializer ?? []).filter((t) => isFloatTensor(t) && dimsOf(t).reduce((a, b) => a * b, 1) > 1).map((t) => t.name ?? '');
}

export function paramLayout(model: OnnxModel, names = trainableParameters(model)): ParamLayout {
  const entries = names.map((name) => {
    const dims = model.getInitializer(name).dims;
    return { name, dims, size: dims.reduce((a, b) => a * b, 1), decay: dims.filter((d) => d > 1).length >= 2 };
  });
  const ordered = [...entries.filter((e) => e.decay), ...entries.filter((e) => !e.decay)];
  let offset = 0;
  const slots = ordered.map((e) => {
    const s = { ...e, offset };
    offset += e.size;
    return s;
  });
  return { slots, total: offset, decayed: slots.filter((s) => s.decay).reduce((a, s) => a + s.size, 0) };
}

/** The model's current parameter values as one flat vector in layout order. */
export function flattenParams(model: OnnxModel, layout: ParamLayout): Float32Array {
  const flat = new Float32Array(layout.total);
  for (const s of layout.slots) flat.set(model.getInitializer(s.name).data, s.offset);
  return flat;
}

/**
 * After flattenParams, for the rest of a run: the model's parameters become views of the flat vector and its other
 * tensors get bytes of their own, so the buffer the model was read from (all its weights: 343 MB for a ViT-B) is
 * released. Checkpoints (modelWithParams) write the parameters from the flat vector anyway.
 */
export function detachWeights(model: OnnxModel, layout: ParamLayout, flat: Float32Array): void {
  for (const s of layout.slots) model.viewInitializer(s.name, flat.subarray(s.offset, s.offset + s.size));
  model.ownBytes();
}

/** A copy of the inference model with the flat parameter vector written back into its initializers. */
export function modelWithParams(model: OnnxModel, layout: ParamLayout, flat: Float32Array): OnnxModel {
  // A clone sharing the graph (not a re-encoded copy) and views of the flat vector: a checkpoint of ViT-B costs one
  // copy of its weights before serialisation instead of three.
  const out = cloneForWeights(model);
  for (const s of layout.slots) out.setInitializer(s.name, flat.subarray(s.offset, s.offset + s.size));
  return out;
}

function opsetOf(model: OnnxModel): number {
  const entry = (model.proto.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  return entry ? Number(entry.version) : 0;
}

/**
 * A copy of the model's proto ready for extra nodes; opset raised to 16 when below (ScatterND's 'add'
 * reduction, used by Gather/Slice gradients, needs it; 13..15 → 16 changes no semantics these exports use).
 */
function workingCopy(model: OnnxModel): { proto: onnx.ModelProto; opset: number } {
  const opset = opsetOf(model);
  if (opset < 13)
    throw new OtfuseError('UNSUPPORTED', `training needs opset ≥ 13 (the model uses ${opset}); re-export it with a newer opset`, { file: model.file });
  const proto = model.protoWithSharedInitializers();
  const target = Math.max(opset, 16);
  for (const o of proto.opsetImport ?? []) if (!o.domain || o.domain === 'ai.onnx') o.version = target;
  if (Number(proto.irVersion) < 8) proto.irVersion = 8;
  return { proto, opset: target };
}

function valueInfo(name: string, dataType: number, dims: (number | string)[]): onnx.ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: dataType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
}

/** Removes initializers (and any graph-input entries older IRs list for them). */
function dropInitializers(graph: onnx.IGraphProto, names: Set<string>): void {
  graph.initializer = (graph.initializer ?? []).filter((t) => !names.has(t.name ?? ''));
  graph.input = (graph.input ?? []).filter((i) => !names.has(i.name ?? ''));
}

interface LossParts {
  loss: string;
  seed: string;
  correct?: string;
  extraInputs: onnx.ValueInfoProto[];
}

/**
 * Knowledge distillation: the loss becomes (1−α)·CE(labels) + α·T²·KL(p_t ‖ softmax(z/T)), where p_t is the
 * `teacher_probs` input ([batch, classes]: the teachers' mean softened probabilities, computed outside the graph).
 * Token data (masked or causal LM: labels per token) distills every scored position: p_t is [batch·tokens, vocab],
 * the KL term is the mean over the positions the cross-entropy scores (the teachers' mean next-token distribution
 * for a causal LM).
 */
export interface DistillSettings {
  /** Softmax temperature T (> 0). */
  temperature: number;
  /** Weight α of the distillation term (0..1). */
  alpha: number;
}

/** Teacher/student probability differences smaller than this are rounding, not signal (see emitDistill). */
export const KD_DEADZONE = 1e-6;

/** Name of the training/gradient graph input holding the teachers' mean softened probabilities. */
export const TEACHER_INPUT = 'teacher_probs';

/**
 * Adds the distillation term to a cross-entropy loss: returns the mixed loss and its gradient w.r.t. the logits.
 * d/dz [T²·KL(p_t ‖ softmax(z/T))] = T·(softmax(z/T) − p_t), averaged over the batch like the cross-entropy.
 */
function emitDistill(
  b: GraphBuilder,
  l2: string,
  count: string,
  ce: LossParts,
  logitsShape: string,
  dt: number,
  classes: number,
  d: DistillSettings,
  /** Token data: [rows, 1], 1 at scored positions, 0 at IGNORE_LABEL ones (which then add nothing). */
  validCol?: string,
): LossParts {
  const f = (v: number) => b.scalar(v, dt);
  const T = d.temperature;
  const pt = TEACHER_INPUT;
  const logq = b.op('LogSoftmax', [b.op('Div', [l2, f(T)])], { axis: A.i(1) });
  // Σ p·(log p − log q); p·log p taken with log(max(p, 1e-30)) so that p = 0 contributes 0.
  const logp = b.op('Log', [b.op('Max', [pt, f(1e-30)])]);
  const terms = b.op('Mul', [pt, b.op('Sub', [logp, logq])]);
  const kl = b.op('Div', [b.reduce('ReduceSum', validCol ? b.op('Mul', [terms, validCol]) : terms, [0, 1], false), count]);
  const loss = b.op('Add', [b.op('Mul', [ce.loss, f(1 - d.alpha)]), b.op('Mul', [kl, f(d.alpha * T * T)])]);
  // Probability differences below KD_DEADZONE are float32 rounding between the teachers' inference sessions and
  // this graph's forward (a model distilled into itself differs from itself by ~1e-7): they are treated as 0, so
  // that Adam's normalisation (m/√v) does not turn rounding noise into full-size parameter steps.
  const diff = b.op('Sub', [b.op('Exp', [logq]), pt]);
  const keptAll = b.op('Where', [b.op('Less', [b.op('Abs', [diff]), f(KD_DEADZONE)]), f(0), diff]);
  const kept = validCol ? b.op('Mul', [keptAll, validCol]) : keptAll;
  const dkd = b.op('Div', [b.op('Mul', [kept, f(d.alpha * T)]), count]);
  const seed = b.op('Add', [b.op('Mul', [ce.seed, f(1 - d.alpha)]), b.reshape(dkd, logitsShape)]);
  return { ...ce, loss, seed, extraInputs: [...ce.extraInputs, valueInfo(pt, dt, [validCol ? 'batch_tokens' : 'batch', classes])] };
}

export function checkDistill(d: DistillSettings | undefined): void {
  if (!d) return;
  if (!(d.temperature > 0) || !Number.isFinite(d.temperature)) throw new OtfuseError('BAD_USAGE', `--kd-temp must be a positive number (got ${d.temperature})`);
  if (!(d.alpha >= 0 && d.alpha <= 1)) throw new OtfuseError('BAD_USAGE', `--kd-alpha must be between 0 and 1 (got ${d.alpha})`);
}

/** Softmax cross-entropy (mean over samples, optional label smoothing) or Σ logits·w, with dLoss/dLogits. */
function emitLoss(b: GraphBuilder, logits: string, info: TensorInfo, kind: LossKind, smoothing: number, distill?: DistillSettings, masked = false): LossParts {
  const dt = info.dataType;
  if (kind === 'weighted-sum') {
    const w = 'loss_weights';
    const loss = b.reduce(
      'ReduceSum',
      b.op('Mul', [logits, w]),
      info.dims.map((_, i) => i),
      false,
    );
    return {
      loss,
      seed: w,
      extraInputs: [
        valueInfo(
          w,
          dt,
          info.dims.map((d, i) => (i === 0 ? 'batch' : d)),
        ),
      ],
    };
  }
  const classes = info.dims[info.dims.length - 1];
  if (masked) return emitMaskedLoss(b, logits, dt, classes, smoothing, distill);
  const l2 = b.reshape(logits, b.i64([-1, classes]));
  const labels = b.reshape('labels', b.i64([-1]));
  const logp = b.op('LogSoftmax', [l2], { axis: A.i(1) });
  const off = smoothing / classes;
  const target = b.op('OneHot', [labels, b.i64([classes], true), b.constant(dt, [2], [off, 1 - smoothing + off])], { axis: A.i(-1) });
  const count = b.op('Cast', [b.op('Gather', [b.shape(l2), b.i64([0], true)], { axis: A.i(0) })], { to: A.i(dt) });
  const nll = b.op('Neg', [b.reduce('ReduceSum', b.op('Mul', [target, logp]), [0, 1], false)]);
  const loss = b.op('Div', [nll, count]);
  const d2 = b.op('Div', [b.op('Sub', [b.op('Exp', [logp]), target]), count]);
  const seed = b.reshape(d2, b.shape(logits));
  const hits = b.op('Cast', [b.op('Equal', [b.op('ArgMax', [l2], { axis: A.i(1), keepdims: A.i(0) }), labels])], { to: A.i(DT.FLOAT) });
  const correct = b.reduce('ReduceSum', hits, [0], false);
  const ce: LossParts = { loss, seed, correct, extraInputs: [valueInfo('labels', DT.INT64, ['batch'])] };
  return distill ? emitDistill(b, l2, count, ce, b.shape(logits), dt, classes, distill) : ce;
}

/**
 * Masked-LM cross-entropy: per-token logits [batch, tokens, vocab] against token labels (flattened [batch·tokens]);
 * positions labelled IGNORE_LABEL (−100) add nothing; the loss is the mean over the labelled positions (at least
 * one), `correct` counts labelled positions predicted right.
 */
function emitMaskedLoss(b: GraphBuilder, logits: string, dt: number, classes: number, smoothing: number, distill?: DistillSettings): LossParts {
  const l2 = b.reshape(logits, b.i64([-1, classes]));
  const labels = b.reshape('labels', b.i64([-1]));
  const ignored = b.op('Equal', [labels, b.i64([IGNORE_LABEL], true)]);
  const valid = b.op('Cast', [b.op('Not', [ignored])], { to: A.i(dt) });
  const safe = b.op('Where', [ignored, b.i64([0], true), labels]);
  const logp = b.op('LogSoftmax', [l2], { axis: A.i(1) });
  const off = smoothing / classes;
  const validCol = b.op('Unsqueeze', [valid, b.i64([1])]);
  const target = b.op('Mul', [b.op('OneHot', [safe, b.i64([classes], true), b.constant(dt, [2], [off, 1 - smoothing + off])], { axis: A.i(-1) }), validCol]);
  const count = b.op('Max', [b.reduce('ReduceSum', valid, [0], false), b.constant(dt, [], [1])]);
  const nll = b.op('Neg', [b.reduce('ReduceSum', b.op('Mul', [target, logp]), [0, 1], false)]);
  const loss = b.op('Div', [nll, count]);
  const d2 = b.op('Div', [b.op('Sub', [b.op('Mul', [b.op('Exp', [logp]), validCol]), target]), count]);
  const seed = b.reshape(d2, b.shape(logits));
  const hits = b.op('Mul', [b.op('Cast', [b.op('Equal', [b.op('ArgMax', [l2], { axis: A.i(1), keepdims: A.i(0) }), labels])], { to: A.i(dt) }), valid]);
  const correct = b.reduce('ReduceSum', hits, [0], false);
  const ce: LossParts = { loss, seed, correct, extraInputs: [valueInfo('labels', DT.INT64, ['batch_tokens'])] };
  // Token distillation (a causal LM's next-token distributions): the KL term over the scored positions only.
  return distill ? emitDistill(b, l2, count, ce, b.shape(logits), dt, classes, distill, validCol) : ce;
}

export interface GradientGraphOptions {
  /** Tensors to differentiate with respect to (default: trainableParameters). Initializers become inputs. */
  wrt?: string[];
  loss?: LossKind;
  labelSmoothing?: number;
  probeFeeds?: ProbeFeeds;
  /** Cross-entropy mixed with distillation (adds the `teacher_probs` input). */
  distill?: DistillSettings;
  /** Token labels [batch·tokens] with IGNORE_LABEL at unscored positions (as StepSettings.maskedLabels). */
  maskedLabels?: boolean;
}

export interface GradientGraph {
  model: OnnxModel;
  wrt: string[];
  /** Output name of each wrt tensor's gradient: `grad:<name>`. */
  gradOutputs: string[];
}

/** The output holding one parameter's gradient, in the gradient graph and the training step (besides STEP_OUTPUTS). */
export const gradOutput = (name: string): string => `grad:${name}`;

/**
 * The gradient graph: inputs = the model's inputs, the wrt tensors, and `labels` (cross-entropy) or
 * `loss_weights` (weighted sum); outputs = `loss` and `grad:<name>` per wrt tensor.
 */
export async function buildGradientGraph(model: OnnxModel, options: GradientGraphOptions = {}): Promise<GradientGraph> {
  const info = await probeShapes(model, options.probeFeeds ?? defaultProbeFeeds(model));
  const wrt = options.wrt ?? trainableParameters(model);
  const { proto, opset } = workingCopy(model);
  const graph = proto.graph!;
  const b = new GraphBuilder('grad', opset);
  const logits = graph.output![0].name!;
  const lossParts = emitLoss(b, logits, info.get(logits)!, options.loss ?? 'cross-entropy', options.labelSmoothing ?? 0, options.distill, options.maskedLabels);
  const grads = emitBackward({ model, info, builder: b, wrt, seeds: new Map([[logits, lossParts.seed]]), nodes: graph.node ?? [] });
  const initNames = new Set(model.initializerNames());
  const lifted = wrt.filter((w) => initNames.has(w));
  dropInitializers(graph, new Set(lifted));
  graph.input = [...(graph.input ?? []), ...lifted.map((w) => valueInfo(w, info.get(w)!.dataType, info.get(w)!.dims)), ...lossParts.extraInputs];
  graph.node = [...(graph.node ?? []), ...b.nodes];
  graph.initializer = [...(graph.initializer ?? []), ...b.initializers];
  const gradOutputs = wrt.map(gradOutput);
  graph.node.push(onnx.NodeProto.create({ opType: 'Identity', name: 'grad/loss_out', input: [lossParts.loss], output: ['loss'] }));
  wrt.forEach((w, i) =>
    graph.node!.push(onnx.NodeProto.create({ opType: 'Identity', name: `grad/out_${i}`, input: [grads.get(w)!], output: [gradOutputs[i]] })),
  );
  graph.output = [onnx.ValueInfoProto.create({ name: 'loss' }), ...gradOutputs.map((name) => onnx.ValueInfoProto.create({ name }))];
  return { model: new OnnxModel(proto, model.file), wrt, gradOutputs };
}

export interface StepSettings {
  labelSmoothing?: number;
  /** Distillation from teachers' softened probabilities (adds the `teacher_probs` input). */
  distill?: DistillSettings;
  /** Masked-LM data: `labels` are token labels [batch·tokens] with IGNORE_LABEL (−100) at unscored positions. */
  maskedLabels?: boolean;
}

export interface TrainingGraph {
  /** Inputs: model inputs, labels (and teacher_probs), one per parameter tensor. Outputs: see STEP_OUTPUTS. */
  model: OnnxModel;
  layout: ParamLayout;
  dataInputs: string[];
  /** Bytes of the forward pass's intermediates in the probe run (memory.ts scales them to the batch). */
  probeBytes: number;
}

export const STEP_OUTPUTS = ['loss', 'grad_norm', 'correct'] as const;

/**
 * The parameters as graph inputs, one per tensor under its initializer's name: the caller feeds views of the flat
 * vector (paramFeeds in finetune.ts), so no Split copies the parameters inside every run.
 */
function paramInputs(layout: ParamLayout): onnx.ValueInfoProto[] {
  return layout.slots.map((s) => valueInfo(s.name, DT.FLOAT, s.dims));
}

/**
 * WebGPU kernels bind every input and output as a storage buffer and allow at most 16 per shader, so one Sum over
 * all ~60 parameters' squared gradient norms fails there. It is emitted as a tree of at most CHUNK inputs per node.
 */
const CHUNK = 8;

function chunks<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

function emitChunkedSum(b: GraphBuilder, inputs: string[]): string {
  if (inputs.length === 1) return inputs[0];
  if (inputs.length <= CHUNK) return b.op('Sum', inputs);
  return emitChunkedSum(
    b,
    chunks(inputs).map((g) => (g.length === 1 ? g[0] : b.op('Sum', g))),
  );
}

function dataInputsOf(model: OnnxModel): onnx.IValueInfoProto[] {
  const initNames = new Set(model.initializerNames());
  return (model.graph.input ?? []).filter((i) => !initNames.has(i.name ?? ''));
}

export async function buildTrainingGraph(
  model: OnnxModel,
  settings: StepSettings = {},
  options: { params?: string[]; probeFeeds?: ProbeFeeds } = {},
): Promise<TrainingGraph> {
  const info = await probeShapes(model, options.probeFeeds ?? defaultProbeFeeds(model));
  const names = options.params ?? parametersOnGradientPath(model, info, trainableParameters(model), model.graph.output![0].name!);
  if (names.length === 0) throw new OtfuseError('UNSUPPORTED', 'the model has no trainable parameters on the path to its first output', { file: model.file });
  const layout = paramLayout(model, names);
  for (const s of layout.slots) {
    const dt = model.getInitializer(s.name).dataType;
    if (dt !== DT.FLOAT) throw new OtfuseError('UNSUPPORTED', `parameter '${s.name}' is ${DT[dt]}; training supports float32 parameters`, { file: model.file });
  }
  const { proto, opset } = workingCopy(model);
  const graph = proto.graph!;
  const b = new GraphBuilder('train', opset);
  const forwardNodes = graph.node ?? [];
  const logits = graph.output![0].name!;
  checkDistill(settings.distill);
  const lossParts = emitLoss(b, logits, info.get(logits)!, 'cross-entropy', settings.labelSmoothing ?? 0, settings.distill, settings.maskedLabels);
  const grads = emitBackward({
    model,
    info,
    builder: b,
    wrt: layout.slots.map((s) => s.name),
    seeds: new Map([[logits, lossParts.seed]]),
    nodes: forwardNodes,
  });
  // One output per parameter gradient (no Concat into a flat copy: ONNX Runtime would hold both, and the host
  // updates each parameter's slice of the flat vectors from its own gradient), and the global norm for clipping.
  const gradNorm = b.op('Sqrt', [
    emitChunkedSum(
      b,
      layout.slots.map((s) => b.op('ReduceSumSquare', [grads.get(s.name)!], { keepdims: A.i(0) })),
    ),
  ]);
  // Clipping and AdamW run on the host, in place (adamw.ts): the graph hands out the raw gradients and their norm.
  const outs: Record<(typeof STEP_OUTPUTS)[number], string> = {
    loss: lossParts.loss,
    grad_norm: gradNorm,
    correct: lossParts.correct!,
  };
  for (const name of STEP_OUTPUTS) b.node('Identity', [outs[name]], {}, [name]);
  for (const s of layout.slots) b.node('Identity', [grads.get(s.name)!], {}, [gradOutput(s.name)]);
  dropInitializers(graph, new Set(layout.slots.map((s) => s.name)));
  const dataInputs = dataInputsOf(model).map((i) => i.name ?? '');
  graph.input = [...dataInputsOf(model), ...lossParts.extraInputs, ...paramInputs(layout)];
  // The original forward (it reads the parameter inputs), then loss and backward.
  graph.node = [...forwardNodes, ...b.nodes];
  graph.initializer = [...(graph.initializer ?? []), ...b.initializers];
  graph.output = [...STEP_OUTPUTS, ...layout.slots.map((s) => gradOutput(s.name))].map((name) => onnx.ValueInfoProto.create({ name }));
  return { model: new OnnxModel(proto, model.file), layout, dataInputs, probeBytes: probeActivationBytes(model, info) };
}

/** Forward graph reading its parameters as inputs (paramInputs); output: the model's first output. */
export function buildEvalGraph(model: OnnxModel, layout: ParamLayout): OnnxModel {
  const proto = model.protoWithSharedInitializers();
  const graph = proto.graph!;
  dropInitializers(graph, new Set(layout.slots.map((s) => s.name)));
  graph.input = [...dataInputsOf(model), ...paramInputs(layout)];
  graph.output = [graph.output![0]];
  return new OnnxModel(proto, model.file);
}
