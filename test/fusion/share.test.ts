// Captures and regmean's tapped Grams shared between fusions (worker/fusion/share.ts, issue 31): the auto-tune's
// trials and the final fusion of the same models on the same samples capture once, and a fusion that reuses the
// shared capture writes exactly the bytes (fused weights, refit, maps) of one that captured afresh.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel, type OnnxModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded, type LoadedFusionResult } from '../../worker/fusion/fuse';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { CaptureShare, CostCache } from '../../worker/fusion/share';
import { sliceDataset } from '../../worker/jobs/autotune';
import { EXAMPLES } from '../helpers';

const S10 = path.join(EXAMPLES, 'vit48_s10.onnx');
const S11 = path.join(EXAMPLES, 'vit48_s11.onnx');
const CALIB = path.join(EXAMPLES, 'calib200.npz');

function sameBytes(a: LoadedFusionResult, b: LoadedFusionResult, models: OnnxModel[], what: string): void {
  for (const name of models[0].initializerNames()) {
    const x = a.fused.getInitializer(name).data,
      y = b.fused.getInitializer(name).data;
    assert.deepEqual(Buffer.from(x.buffer, x.byteOffset, x.byteLength), Buffer.from(y.buffer, y.byteOffset, y.byteLength), `${what}: ${name}`);
  }
  assert.deepEqual(
    a.refit?.map((r) => [r.name, r.errorRefit]),
    b.refit?.map((r) => [r.name, r.errorRefit]),
  );
  assert.deepEqual(
    a.maps[1].map((m) => [m.name, m.diagnostics.cost]),
    b.maps[1].map((m) => [m.name, m.diagnostics.cost]),
  );
}

test('share: trials with other recipes before it, the chosen recipe fuses to the same bytes from the shared capture', async () => {
  const models = [loadModel(S11), loadModel(S10)];
  const calib = openDataset(CALIB);
  const fit = sliceDataset(calib, 0, 150);
  const chosen = resolveRecipe({ solver: 'sinkhorn', reg: 0.08, refit: 'regmean', refitRidge: 0.1, samples: 150 });
  const fresh = await fuseLoaded({ models, recipe: chosen, calib: fit });

  const share = new CaptureShare();
  // the sweep: a regmean trial captures (with Grams), the others read it
  const trials = [resolveRecipe({ preset: 'exact', refit: 'regmean', samples: 150 }), resolveRecipe({ solver: 'emd', refit: 'none', samples: 150 }), chosen];
  const results: LoadedFusionResult[] = [];
  for (const recipe of trials) results.push(await fuseLoaded({ models, recipe, calib: fit, share }));
  assert.equal(share.misses, 1);
  assert.equal(share.hits, 2);
  sameBytes(results[2], fresh, models, 'trial from the shared capture');
  // the other trials are what they are without the share, too
  sameBytes(results[1], await fuseLoaded({ models, recipe: trials[1], calib: fit }), models, 'no-refit trial');

  // The final fusion on the whole calibration file with the same samples (the first 150) reads the trials' capture.
  share.seal();
  const final = await fuseLoaded({ models, recipe: chosen, calib, share });
  assert.equal(share.hits, 3);
  sameBytes(final, fresh, models, 'final fusion from the shared capture');
  // other samples: a miss, captured afresh (the share drops what it held), same bytes as without it
  const other = { ...chosen, samples: 120 };
  const again = await fuseLoaded({ models, recipe: other, calib, share });
  assert.equal(share.misses, 2);
  sameBytes(again, await fuseLoaded({ models, recipe: other, calib }), models, 'a miss');
  await share.clear();
});

test('share: cost matrices computed from the shared capture are reused by later trials, same bytes as computed afresh', async () => {
  const models = [loadModel(S11), loadModel(S10)];
  const calib = openDataset(CALIB);
  const fit = sliceDataset(calib, 0, 150);
  // three solvers / refits on one capture: the activation costs of every layer are the same three times
  const trials = [
    resolveRecipe({ solver: 'sinkhorn', reg: 0.08, refit: 'regmean', samples: 150 }),
    resolveRecipe({ solver: 'emd', refit: 'none', samples: 150 }),
    resolveRecipe({ solver: 'sinkhorn', reg: 0.08, refit: 'regmean', refitRidge: 0.1, samples: 150 }),
    resolveRecipe({ preset: 'exact', refit: 'regmean', samples: 150 }),
  ];
  const share = new CaptureShare();
  const results: LoadedFusionResult[] = [];
  const stats: { hits: number; misses: number; bytes: number }[] = [];
  for (const recipe of trials) {
    results.push(await fuseLoaded({ models, recipe, calib: fit, share }));
    stats.push(share.costStats()!);
  }
  assert.equal(share.misses, 1);
  // the first trial computes every activation cost (misses only), the next two read all of them
  assert.equal(stats[0].hits, 0);
  assert.ok(stats[0].misses >= 12, `first trial: ${stats[0].misses} costs computed`);
  assert.ok(stats[0].bytes > 0);
  assert.equal(stats[1].misses, stats[0].misses, 'the EMD trial computes no activation cost again');
  assert.equal(stats[1].hits, stats[0].misses);
  assert.equal(stats[2].hits, 2 * stats[0].misses);
  for (let i = 0; i < trials.length; i++)
    sameBytes(results[i], await fuseLoaded({ models, recipe: trials[i], calib: fit }), models, `trial ${i} with shared costs`);
  await share.clear();
  assert.equal(share.costStats(), undefined);
});

test('share: the cost cache hands out copies, only for matrices of the held stores, within its byte bound', () => {
  const X = new Float32Array(4),
    Y = new Float32Array(4),
    other = new Float32Array(4);
  const store = { holds: (m: object) => m === X || m === Y, get: () => assert.fail(), absMean: () => assert.fail(), bytes: 32 };
  const cache = new CostCache([store], 16 + 8);
  assert.equal(cache.covers(X, Y), true);
  assert.equal(cache.covers(X, other), false, 'a matrix the stores do not hold is never cached');
  cache.put(X, Y, 'k', { cost: Float64Array.of(1, 2), scale: 3 });
  const got = cache.get(X, Y, 'k')!;
  got.cost[0] = 99;
  assert.deepEqual([...cache.get(X, Y, 'k')!.cost], [1, 2], 'the caller wrote into its copy only');
  assert.equal(cache.get(Y, X, 'k'), undefined);
  assert.equal(cache.get(X, Y, 'other settings'), undefined);
  cache.put(Y, X, 'k', { cost: Float64Array.of(1, 2), scale: 1 }); // 16 + 16 bytes > 24: not kept
  assert.equal(cache.get(Y, X, 'k'), undefined);
  assert.equal(cache.bytes, 16);
});
