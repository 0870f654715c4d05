// dare_linear and dare_ties: drop each δ entry with probability 1 − density (seeded, per tensor and model: see
// tensorops.dareStream), rescale the survivors by 1/density, then mix linearly or with TIES' sign election.
// mergekit's defaults: normalize = false for both.
import type { MergeMethod, TensorInput } from '../method';
import type { ResolvedMergeParams } from '../params';
import { addToBase, dareDrop, dareStream, mixTaskVectors, taskVector } from '../tensorops';

function dare({ name, models, base }: TensorInput, p: ResolvedMergeParams, elect: boolean): Float32Array {
  const deltas = models.map((m, i) => dareDrop(taskVector(m, base!), p.density, dareStream(p.seed, name, i)));
  return addToBase(base!, mixTaskVectors(deltas, p.weights, { elect, normalize: p.normalize }), p.lambda);
}

const params = [{ name: 'weights' }, { name: 'density' }, { name: 'lambda' }, { name: 'seed' }, { name: 'normalize', default: false }] as const;

export const dareLinear: MergeMethod = {
  name: 'dare_linear',
  title: 'DARE + linear',
  needsBase: true,
  minModels: 1,
  params,
  formula: 'δ̃_i = m_i ⊙ δ_i / density, m_i ~ Bernoulli(density) (seeded); θ = θ_base + λ Σ w_i δ̃_i  (÷ Σ w_i with normalize)',
  reference: 'https://arxiv.org/abs/2311.03099',
  mergeTensor: (input, p) => ({ values: dare(input, p, false) }),
};

export const dareTies: MergeMethod = {
  name: 'dare_ties',
  title: 'DARE + TIES sign election',
  needsBase: true,
  minModels: 1,
  params,
  formula: 'δ̃_i = m_i ⊙ δ_i / density (seeded); s = sign Σ w_i δ̃_i; θ = θ_base + λ Σ_{i: sign δ̃_i = s} w_i δ̃_i  (÷ Σ of those w_i with normalize)',
  reference: 'https://arxiv.org/abs/2311.03099',
  mergeTensor: (input, p) => ({ values: dare(input, p, true) }),
};
