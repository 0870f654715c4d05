// CrossProducts: a Gram XᵀX of FLUSH_ROWS × width float32 rows, full product (add) vs column blocks (addGram).
// node dist-bench/fusion/gram-blocks.bench.js [--rows 4096] [--widths 769,3073] [--reps 3]
import { performance } from 'node:perf_hooks';
import { CrossProducts } from '../../worker/fusion/refitgrams';
import { seededRandom } from '../../worker/random';
import { cliArg } from '../common';

async function main(): Promise<void> {
  const rows = Number(cliArg('--rows') ?? 4096);
  const widths = (cliArg('--widths') ?? '769,3073').split(',').map(Number);
  const reps = Number(cliArg('--reps') ?? 3);
  const products = await CrossProducts.create();
  for (const width of widths) {
    const r = seededRandom(width);
    const X = Float32Array.from({ length: rows * width }, () => r() - 0.5);
    const G = new Float64Array(width * width);
    const time = async (f: () => Promise<void>): Promise<number> => {
      await f();
      const t: number[] = [];
      for (let k = 0; k < reps; k++) {
        const t0 = performance.now();
        await f();
        t.push(performance.now() - t0);
      }
      return t.sort((a, b) => a - b)[Math.floor(reps / 2)];
    };
    const full = await time(() => products.add(G, X, width, X, width, rows));
    const blocks = await time(async () => {
      await products.addGram(G, X, width, rows);
      CrossProducts.symmetrize(G, width);
    });
    console.log(
      JSON.stringify({
        rows,
        width,
        full_ms: Math.round(full),
        blocks_ms: Math.round(blocks),
        gflop_full: +((2 * rows * width * width) / full / 1e6).toFixed(1),
      }),
    );
  }
  await products.release();
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
