// task_arithmetic: θ_base + λ Σ w_i δ_i (mergekit's defaults: w_i = 1, λ = 1, no normalisation).
import type { MergeMethod } from '../method';
import { addToBase, mixTaskVectors, taskVector } from '../tensorops';

export const taskArithmetic: MergeMethod = {
  name: 'task_arithmetic',
  title: 'Task arithmetic',
  needsBase: true,
  minModels: 1,
  params: [{ name: 'weights' }, { name: 'lambda' }, { name: 'normalize', default: false }],
  formula: 'θ = θ_base + λ Σ w_i δ_i  (÷ Σ w_i with normalize), δ_i = θ_i − θ_base',
  reference: 'https://arxiv.org/abs/2212.04089',
  mergeTensor({ models, base }, p) {
    const deltas = models.map((m) => taskVector(m, base!));
    return { values: addToBase(base!, mixTaskVectors(deltas, p.weights, { elect: false, normalize: p.normalize }), p.lambda) };
  },
};
