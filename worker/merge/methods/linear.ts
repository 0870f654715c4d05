// linear (model soup): Σ w_i θ_i / Σ w_i. No base.
import type { MergeMethod } from '../method';

export const linear: MergeMethod = {
  name: 'linear',
  title: 'Linear (weighted average)',
  needsBase: false,
  minModels: 2,
  params: [{ name: 'weights' }],
  formula: 'θ = Σ w_i θ_i / Σ w_i',
  reference: 'https://arxiv.org/abs/2203.05482',
  mergeTensor({ models }, { weights }) {
    const wsum = weights.reduce((a, b) => a + b, 0);
    const out = new Float32Array(models[0].length);
    for (let j = 0; j < out.length; j++) {
      let acc = 0;
      for (let i = 0; i < models.length; i++) acc += weights[i] * models[i][j];
      out[j] = acc / wsum;
    }
    return { values: out };
  },
};
