// CrossProducts.addGram: XᵀX by column blocks (upper triangle only, then symmetrize) against a float64 reference.
import test from 'node:test';
import assert from 'node:assert/strict';
import { CrossProducts } from '../../worker/fusion/refitgrams';
import { seededRandom } from '../../worker/random';

for (const [width, rows] of [
  [700, 300], // two column blocks
  [2100, 260], // four column blocks
  [300, 500], // one block (full product)
]) {
  test(`addGram ${rows}×${width}: equals the float64 Gram to float32 accuracy, exactly symmetric, accumulates`, async () => {
    const r = seededRandom(width);
    const X1 = Float32Array.from({ length: rows * width }, () => r() * 2 - 1);
    const X2 = Float32Array.from({ length: rows * width }, () => (r() < 0.5 ? 0 : r()));
    const want = new Float64Array(width * width);
    for (const X of [X1, X2])
      for (let k = 0; k < rows; k++)
        for (let i = 0; i < width; i++) {
          const x = X[k * width + i];
          if (x === 0) continue;
          for (let j = 0; j < width; j++) want[i * width + j] += x * X[k * width + j];
        }
    const products = await CrossProducts.create();
    const G = new Float64Array(width * width);
    try {
      await products.addGram(G, X1, width, rows);
      await products.addGram(G, X2, width, rows);
    } finally {
      await products.release();
    }
    CrossProducts.symmetrize(G, width);
    let scale = 0,
      worst = 0;
    for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
    for (let i = 0; i < width; i++)
      for (let j = 0; j < width; j++) {
        assert.equal(G[i * width + j], G[j * width + i]);
        worst = Math.max(worst, Math.abs(G[i * width + j] - want[i * width + j]));
      }
    assert.ok(worst < 1e-5 * scale, `max |G − XᵀX| = ${worst} (scale ${scale})`);
    // a wrong block (an offset or a transposed pair) would be off by O(scale)
    assert.ok(scale > 10);
  });
}
