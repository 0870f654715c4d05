// OT solvers follow the execution provider through solveOTAsync: Sinkhorn's ONNX Runtime path (sinkhorn-ort.ts)
// runs inside fusion and gives the same fused model as the JS solver (CPU here; a GPU provider takes the same path).
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { VIT, maxAbsDiff } from '../helpers';

const calib = openDataset({ path: path.join(VIT, 'calib200.npz'), limit: 64 });

test('Sinkhorn through ONNX Runtime inside fusion equals the JS solver', async () => {
  const models = [loadModel(path.join(VIT, 'vit48_s11.onnx')), loadModel(path.join(VIT, 'vit48_s10.onnx'))];
  const base = resolveRecipe({ samples: 64, refit: 'none' });
  const js = await fuseLoaded({ models, recipe: base, calib });
  const ort = await fuseLoaded({ models, recipe: { ...base, otBackend: 'ort' }, calib });
  // The 192×192 MLP maps are solved in ONNX Runtime (the diagnostics say so); the JS run never is.
  const fc1 = ort.maps[1].find((m) => m.name === 'blocks.0.mlp.fc1')!;
  assert.equal(fc1.diagnostics.onnxRuntime, 1);
  assert.ok(js.maps[1].every((m) => m.diagnostics.onnxRuntime === undefined));
  assert.equal(fc1.diagnostics.iterations, js.maps[1].find((m) => m.name === 'blocks.0.mlp.fc1')!.diagnostics.iterations);
  for (const name of models[0].initializerNames()) {
    const a = js.fused.getInitializer(name).data,
      b = ort.fused.getInitializer(name).data;
    assert.ok(maxAbsDiff(a, b) < 1e-5, `${name} differs by ${maxAbsDiff(a, b)}`);
  }
});
