// WebGPU binds each input and output of a kernel as a storage buffer, at most 16 per shader. A training-step
// graph with one Split/Concat over all parameters failed on the GPU machine ("Too many storage buffers in
// shader. Current: 17, Max is 16"); this keeps every node of the step graphs within that limit.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { buildTrainingGraph } from '../../worker/train/graphs';

for (const file of ['test/fixtures/vit/vit48_s10.onnx', 'test/fixtures/bert/bertD_s20.onnx']) {
  test(`every node of the training-step graph of ${path.basename(file)} binds at most 16 buffers`, async () => {
    const step = await buildTrainingGraph(loadModel(path.join(process.cwd(), file)));
    const wide = step.model.nodes
      .map((n) => ({ name: n.name, op: n.opType, buffers: (n.input ?? []).filter(Boolean).length + (n.output ?? []).length }))
      .filter((n) => n.buffers > 16);
    assert.deepEqual(wide, []);
    assert.ok(step.layout.slots.length > 16, 'the model has more parameters than one kernel could bind');
  });
}
