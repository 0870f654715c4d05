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
import { CaptureShare } from '../../worker/fusion/share';
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
