// Trunk distillation for partial models (issue 28): before a partial model's finetune, its shared trunk (the fused
// embedding and K blocks) and every branch's unmerge map are trained by gradient descent so that each branch's
// stream at the cut reproduces its own parent's stream there — mean squared error over tokens and features, every
// branch at once — on the finetune's training images (no labels used). The branches' upper blocks and heads are
// not touched: they keep reading the features their parent's blocks produced. Least squares (fusion/trunkfit.ts)
// can only refit the writers linearly on 200 calibration samples; this trains every trunk weight on the training set.
//
// The loss is the partial graph cut at the branches' streams, concatenated, minus a `feat_target` input, squared and
// summed per sample over the real tokens (text: attention_mask 0 positions count nothing): its gradient graph is built by the trainer's autodiff with a weighted-sum loss (weights
// 1 / (batch · elements)). The targets are the parents' own streams at the cut, computed once (bounded: above
// TARGET_BYTES_MAX the stage is skipped with the reason) — the parents are the finetune's teachers, matched to the
// branches by their weights (a branch's blocks are its parent's, copied unchanged).
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { throwIfCancelled } from '../errors';
import { loadModel, type OnnxModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import { analyzeModel } from '../graph/analyze';
import { cutTensor, isPartialModel, partialMetadata } from '../fusion/partial';
import { captureTensors } from '../fusion/unmerge';
import { toOrtTensor } from '../runtime/runner';
import { bindCalibInputs, graphInputs } from '../fusion/calibinputs';
import { createOrtSession } from '../runtime/session';
import { seededRandom } from '../random';
import type { FinetuneRequest, ProgressEvent } from '../types';
import { FINETUNE_DEFAULTS } from './options';
import { buildGradientGraph, flattenParams, gradOutput, modelWithParams, paramLayout, trainableParameters } from './graphs';
import { adamwStep } from './adamw';
import { learningRate, paramFeeds, shuffled } from './schedule';

/**
 * Learning rate and batch (the epochs: --trunk-epochs, options.ts), chosen on the non-IID pair's validation images (K = 3, the shared 2k as
 * training data; bench/quality/trunk-distill.md): lr 1e-3 / 3e-4 / 3e-3 / 2e-3 at 4–80 epochs gave 83.3–84.7 %,
 * 40 epochs at 2e-3 the best (84.7 %; then 160 epochs, the default, 84.8 %: trunk-epochs.bench.ts); linear warmup over 5 % of the steps, then cosine decay (finetune.ts), clip norm 1.
 */
export const TRUNK_DISTILL = { lr: 2e-3, batchSize: 64, warmup: 0.05 } as const;
/** The parents' streams on the training set are held in memory up to this many bytes; beyond, the stage is skipped. */
export const TARGET_BYTES_MAX = 512 * 2 ** 20;

export interface TrunkDistillResult {
  epochs: number;
  /** Mean squared error per element at the cut, per epoch (training images). */
  mse: number[];
  seconds: number;
  /** Why the stage did not run (the model trains as it was). */
  skipped?: string;
}

/** The tensor branch m reads as its stream at the cut: its unmerge output, else the trunk's own output. */
export function branchStream(partial: OnnxModel, m: number, trunkOut: string): string {
  for (const name of [`p${m}/unmerge_bias`, `p${m}/unmerge`]) {
    const node = partial.nodes.find((n) => n.name === name);
    if (node?.output?.[0]) return node.output[0];
  }
  return trunkOut;
}

/** The teacher whose weights branch m carries (a branch's initializers are its parent's under the prefix `p<m>/`). */
function matchTeacher(partial: OnnxModel, m: number, teachers: OnnxModel[]): number {
  const prefix = `p${m}/`;
  const own = partial.initializerNames().filter((n) => n.startsWith(prefix));
  const probe = own.reduce((best, n) => (partial.getInitializer(n).data.length > partial.getInitializer(best).data.length ? n : best), own[0]);
  if (!probe) return -1;
  const a = partial.getInitializer(probe).data;
  return teachers.findIndex((t) => {
    const name = probe.slice(prefix.length);
    if (!t.initializerNames().includes(name)) return false;
    const b = t.getInitializer(name).data;
    return b.length === a.length && b.every((v, i) => v === a[i]);
  });
}

/** Keeps the nodes (and initializers) `outputs` need. */
function prune(model: OnnxModel, outputs: string[]): void {
  const need = new Set(outputs);
  const keep: onnx.INodeProto[] = [];
  for (const n of [...model.nodes].reverse()) {
    if ((n.output ?? []).some((o) => need.has(o))) {
      keep.push(n);
      for (const i of n.input ?? []) if (i) need.add(i);
    }
  }
  model.graph.node = keep.reverse();
  model.graph.initializer = (model.graph.initializer ?? []).filter((t) => need.has(t.name ?? ''));
}

const INT = onnx.AttributeProto.AttributeType.INT;

/** The partial graph cut at the branches' streams: output `trunk/err` = Σ over (real) tokens and features of (f − target)². */
export function lossModel(partial: OnnxModel, streams: string[], tokens: number, width: number): OnnxModel {
  const m = partial.clone();
  const i64 = (name: string, v: number[]) => onnx.TensorProto.create({ name, dataType: onnx.TensorProto.DataType.INT64, dims: [v.length], int64Data: v });
  m.graph.initializer!.push(i64('trunk/axes', [1, 2]));
  // Text: padded positions (attention_mask 0) add nothing; the mask [batch, tokens] scales each token's errors.
  const masked = (m.graph.input ?? []).some((v) => v.name === 'attention_mask');
  if (masked) {
    m.graph.initializer!.push(i64('trunk/last', [2]));
    m.graph.node!.push(
      onnx.NodeProto.create({
        name: 'trunk/mask_f',
        opType: 'Cast',
        input: ['attention_mask'],
        output: ['trunk/mask_f'],
        attribute: [{ name: 'to', type: INT, i: onnx.TensorProto.DataType.FLOAT }],
      }),
      onnx.NodeProto.create({ name: 'trunk/mask3', opType: 'Unsqueeze', input: ['trunk/mask_f', 'trunk/last'], output: ['trunk/mask3'] }),
    );
  }
  m.graph.node!.push(
    onnx.NodeProto.create({ name: 'trunk/cat', opType: 'Concat', input: streams, output: ['trunk/f'], attribute: [{ name: 'axis', type: INT, i: -1 }] }),
    onnx.NodeProto.create({ name: 'trunk/sub', opType: 'Sub', input: ['trunk/f', 'feat_target'], output: ['trunk/d'] }),
    onnx.NodeProto.create({ name: 'trunk/sq', opType: 'Mul', input: ['trunk/d', 'trunk/d'], output: [masked ? 'trunk/sq_all' : 'trunk/sq'] }),
    ...(masked ? [onnx.NodeProto.create({ name: 'trunk/sq_real', opType: 'Mul', input: ['trunk/sq_all', 'trunk/mask3'], output: ['trunk/sq'] })] : []),
    onnx.NodeProto.create({
      name: 'trunk/sum',
      opType: 'ReduceSum',
      input: ['trunk/sq', 'trunk/axes'],
      output: ['trunk/err'],
      attribute: [{ name: 'keepdims', type: INT, i: 0 }],
    }),
  );
  const dim = [{ dimParam: 'batch' }, { dimValue: tokens }, { dimValue: streams.length * width }];
  m.graph.input!.push(onnx.ValueInfoProto.create({ name: 'feat_target', type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim } } } }));
  prune(m, ['trunk/err']);
  m.setOutputs(['trunk/err']);
  return m;
}

export interface TrunkDistillInput {
  partial: OnnxModel;
  /** Teacher model files (the parents, any order; matched to the branches by their weights). */
  teachers: string[];
  data: Dataset;
  epochs: number;
  seed: number;
  signal?: AbortSignal;
  progress?: (e: ProgressEvent) => void;
}

/** Trains the partial model's trunk and unmerge maps to serve every branch (the model itself when skipped). */
export async function distillTrunk(input: TrunkDistillInput): Promise<{ model: OnnxModel; result: TrunkDistillResult }> {
  const t0 = performance.now();
  const { partial, data } = input;
  const skip = (skipped: string) => ({ model: partial, result: { epochs: 0, mse: [], seconds: (performance.now() - t0) / 1000, skipped } });
  const meta = partialMetadata(partial);
  if (!meta || meta.mergeLayers === 0 || input.epochs <= 0) return skip(!meta ? 'not a partial model' : 'nothing shared (K = 0) or no epochs asked');
  const loaded = input.teachers.map((f) => loadModel(f));
  const order = Array.from({ length: meta.models }, (_, m) => matchTeacher(partial, m, loaded));
  if (order.some((i) => i < 0)) return skip("the teachers are not the partial model's parents (no branch's weights match)");
  const parents = order.map((i) => loaded[i]);
  const plans = parents.map((p) => analyzeModel(p));
  const width = plans[0].hidden;
  if (plans.some((p) => p.hidden !== width)) return skip('the parents differ in width at the cut');
  const cuts = plans.map((p) => cutTensor(p, meta.mergeLayers, meta.attention)!);
  if (plans.some((p, m) => p.seqFirst.includes(cuts[m]))) return skip('the stream at the cut is sequence-first ([tokens, batch, width])');
  const streams = parents.map((_, m) => branchStream(partial, m, cuts[0]));
  const per0 = (await captureTensors(parents[0], [cuts[0]], { calib: data, samples: 1 }))[0].length;
  if (per0 * parents.length * data.size * 4 > TARGET_BYTES_MAX)
    return skip(`the parents' streams on ${data.size} samples would take ${((per0 * parents.length * data.size * 4) / 2 ** 30).toFixed(1)} GiB`);
  input.progress?.({ stage: 'finetune', message: 'trunk distillation: the parents’ streams at the cut' });
  const own = await Promise.all(parents.map((p, m) => captureTensors(p, [cuts[m]], { calib: data, samples: data.size, batchSize: 100, signal: input.signal })));
  const tokens = per0 / width;
  const B = parents.length,
    per = tokens * B * width;
  const target = new Float32Array(data.size * per);
  for (let r = 0; r < data.size * tokens; r++) for (let b = 0; b < B; b++) target.set(own[b][0].subarray(r * width, (r + 1) * width), (r * B + b) * width);
  const loss = lossModel(partial, streams, tokens, width);
  const names = trainableParameters(loss);
  const grad = await buildGradientGraph(loss, { loss: 'weighted-sum', wrt: names });
  const layout = paramLayout(loss, names);
  const flat = flattenParams(loss, layout);
  const mom = new Float32Array(flat.length),
    vel = new Float32Array(flat.length),
    g = new Float32Array(flat.length);
  // a training graph run step after step, like the finetune's: it keeps ORT's spinning pool (session.ts)
  const session = await createOrtSession(grad.model.toBytes(), { providers: ['cpu'], spinning: true });
  const binding = await bindCalibInputs(partial, graphInputs(partial), data);
  // Views of the flat vector, which AdamW updates in place: the same feeds every step.
  const params = paramFeeds(layout, flat);
  const rand = seededRandom(input.seed);
  const bs = Math.min(TRUNK_DISTILL.batchSize, data.size);
  const perEpoch = Math.ceil(data.size / bs),
    total = perEpoch * input.epochs;
  const warm = Math.ceil(total * TRUNK_DISTILL.warmup);
  const mse: number[] = [];
  let step = 0;
  try {
    for (let e = 1; e <= input.epochs; e++) {
      const idx = shuffled(data.size, rand);
      let sum = 0;
      for (let s = 0; s < data.size; s += bs) {
        throwIfCancelled(input.signal);
        const pick = Array.from(idx.subarray(s, s + bs));
        const batch = data.take(pick);
        const t = new Float32Array(pick.length * per);
        pick.forEach((r, j) => t.set(target.subarray(r * per, (r + 1) * per), j * per));
        const feeds: Record<string, ort.Tensor> = {
          ...params,
          feat_target: new ort.Tensor('float32', t, [pick.length, tokens, B * width]),
          loss_weights: new ort.Tensor('float32', new Float32Array(pick.length).fill(1 / (pick.length * per)), [pick.length]),
        };
        for (const [name, arr] of Object.entries(binding)) feeds[name] = toOrtTensor(batch.feeds[arr]);
        const out = await session.run(feeds);
        let norm = 0;
        for (const sl of layout.slots) {
          const v = out[gradOutput(sl.name)].data as Float32Array;
          g.set(v, sl.offset);
          for (let i = 0; i < v.length; i++) norm += v[i] * v[i];
        }
        sum += (out.loss.data as Float32Array)[0] * pick.length;
        step++;
        adamwStep(flat, mom, vel, g, Math.sqrt(norm), {
          lr: learningRate(step, total, TRUNK_DISTILL.lr, warm),
          step,
          decayed: layout.decayed,
          weightDecay: 0,
          clipNorm: 1,
        });
      }
      mse.push(sum / data.size);
      input.progress?.({
        stage: 'finetune',
        done: step,
        total,
        message: `trunk distillation: epoch ${e}/${input.epochs}`,
        metrics: { loss: sum / data.size, epoch: e },
      });
    }
  } finally {
    await session.release();
  }
  return { model: modelWithParams(partial, layout, flat), result: { epochs: input.epochs, mse, seconds: (performance.now() - t0) / 1000 } };
}

/** The finetune's first stage for a partial model with teachers (undefined: not a partial model, no teachers, or 0 epochs). */
export async function trunkStage(
  request: FinetuneRequest,
  model: OnnxModel,
  train: Dataset,
  progress: (e: ProgressEvent) => void,
  signal?: AbortSignal,
): Promise<{ model: OnnxModel; result: TrunkDistillResult } | undefined> {
  const epochs = request.trunkEpochs ?? FINETUNE_DEFAULTS.trunkEpochs;
  if (!isPartialModel(model) || !request.teachers?.length || epochs <= 0) return undefined;
  const out = await distillTrunk({
    partial: model,
    teachers: request.teachers,
    data: train,
    epochs,
    seed: request.seed ?? FINETUNE_DEFAULTS.seed,
    signal,
    progress,
  });
  if (out.result.skipped) progress({ stage: 'finetune', message: `trunk distillation skipped: ${out.result.skipped}` });
  return out;
}
