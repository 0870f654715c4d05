// ties: trim each δ_i to its top `density` by magnitude, elect the sign of Σ w_i δ_i, keep the entries that agree,
// disjoint mean (mergekit's default normalize = true), θ_base + λ·that.
import type { MergeMethod } from '../method';
import { addToBase, mixTaskVectors, taskVector, trimByMagnitude } from '../tensorops';

export const ties: MergeMethod = {
  name: 'ties',
  title: 'TIES (trim, elect sign, disjoint mean)',
  needsBase: true,
  minModels: 1,
  params: [{ name: 'weights' }, { name: 'density' }, { name: 'lambda' }, { name: 'normalize', default: true }],
  formula: 'δ̂_i = top-⌊density·n⌋ of δ_i by |·|; s = sign Σ w_i δ̂_i; θ = θ_base + λ Σ_{i: sign δ̂_i = s} w_i δ̂_i / Σ_{i: sign δ̂_i = s} w_i',
  reference: 'https://arxiv.org/abs/2306.01708',
  mergeTensor({ models, base }, p) {
    const deltas = models.map((m) => trimByMagnitude(taskVector(m, base!), p.density));
    return { values: addToBase(base!, mixTaskVectors(deltas, p.weights, { elect: true, normalize: p.normalize }), p.lambda) };
  },
};
