// The decoder capture's spool (worker/fusion/decoder/capture.ts DecoderActs): rows arriving in batches of any size
// come back neuron-major with every stride-th sample of the group kept (stride = ⌈samples / token budget⌉), exactly
// the columns a cost over the whole [samples, n] matrix subsampled the same way would read.
import assert from 'node:assert/strict';
import test from 'node:test';
import { DECODER_TOKEN_BUDGET, DecoderActs } from '../../worker/fusion/decoder/capture';
import { seededRandom } from '../../worker/random';

for (const total of [1000, 3 * DECODER_TOKEN_BUDGET + 5]) {
  test(`${total} samples in uneven batches: the spool returns the kept samples neuron-major`, () => {
    const n = 3;
    const rnd = seededRandom(total);
    const all = Float32Array.from({ length: total * n }, () => rnd());
    const acts = new DecoderActs(total);
    acts.declare('mlp.0', n, total);
    try {
      for (let first = 0; first < total;) {
        const rows = Math.min(total - first, 1 + Math.floor(rnd() * 700));
        acts.add('mlp.0', all.subarray(first * n, (first + rows) * n), first);
        first += rows;
      }
      const stride = Math.max(1, Math.ceil(total / DECODER_TOKEN_BUDGET));
      const { X, d } = acts.features('mlp.0');
      assert.equal(d, Math.ceil(total / stride));
      for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) assert.equal(X[i * d + k], all[k * stride * n + i], `neuron ${i}, kept sample ${k}`);
      if (stride > 1) assert.ok(acts.spooledBytes < all.byteLength / 2, 'only kept rows are spooled');
    } finally {
      acts.release();
    }
  });
}
