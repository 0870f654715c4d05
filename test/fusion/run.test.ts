// fuseModels end to end: the run folder (fused.onnx, run.json, maps.safetensors), progress, three models,
// cancellation and bad inputs leaving nothing behind.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { encodeNpz } from '../../worker/data/npy';
import { fuseModels } from '../../worker/jobs/run';
import { decodeSafetensors } from '../../worker/fusion/safetensors';
import { OtfuseError } from '../../worker/errors';
import type { ProgressEvent, RunRecord } from '../../worker/types';
import { VIT, EXAMPLES, tempDir } from '../helpers';
import { dropLastBlock, sixHeads, replaceOp, mlpModel } from '../graph/surgery';

const S10 = path.join(VIT, 'vit48_s10.onnx');
const S11 = path.join(VIT, 'vit48_s11.onnx');
const W72 = path.join(VIT, 'vit72_s12.onnx');
const CALIB = path.join(VIT, 'calib200.npz');
const EVAL = path.join(EXAMPLES, 'data', 'fmnist-test-2k.json');

test('a default run writes fused.onnx, run.json and maps.safetensors, and evaluates parents, vanilla and OT', async () => {
  const runsDir = tempDir();
  const output = path.join(tempDir(), 'out.onnx');
  const events: ProgressEvent[] = [];
  const { runDir, record } = await fuseModels(
    { models: [S10, S11], anchor: S11, data: CALIB, evalData: EVAL, evalLimit: 1000, runsDir, output, recipe: { name: 'unit' } },
    { onProgress: (e) => events.push(e) },
  );
  assert.equal(path.dirname(runDir), runsDir);
  assert.match(path.basename(runDir), /^\d{8}-\d{6}-unit$/);
  assert.deepEqual(fs.readdirSync(runDir).sort(), ['.otfuse-owner.json', 'fused.onnx', 'maps.safetensors', 'run.json']);
  assert.deepEqual(fs.readdirSync(runsDir), [path.basename(runDir)], 'no temp folders left');
  assert.ok(fs.existsSync(output));
  const onDisk = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')) as RunRecord;
  assert.deepEqual(onDisk, JSON.parse(JSON.stringify(record)));
  assert.equal(record.status, 'done');
  assert.equal(record.anchor, S11);
  assert.deepEqual(record.models, [S11, S10]);
  assert.equal(record.recipe.solver, 'sinkhorn');
  assert.equal(record.recipe.reg, 0.08);
  assert.equal(record.recipe.residualPolicy, 'mean');
  assert.deepEqual(
    record.metrics.map((m) => m.label),
    ['vit48_s11.onnx (anchor)', 'vit48_s10.onnx', 'vanilla', 'ot'],
  );
  for (const m of record.metrics) assert.ok(m.accuracy! > 0 && m.accuracy! <= 1 && Number.isFinite(m.loss));
  const acc = Object.fromEntries(record.metrics.map((m) => [m.label, m.accuracy!]));
  assert.ok(acc.ot > acc.vanilla + 0.1, `OT ${acc.ot} vs vanilla ${acc.vanilla}`);
  for (const k of ['load', 'analyze', 'activations', 'align', 'refit', 'write', 'evaluate', 'total']) assert.ok(record.timings[k] >= 0, `timing ${k}`);
  // Maps: every layer record points at a tensor of its shape.
  const st = decodeSafetensors(new Uint8Array(fs.readFileSync(path.join(runDir, 'maps.safetensors'))));
  assert.equal(record.mapsFile, 'maps.safetensors');
  assert.ok(record.layers.length >= 3 + 3 * 6);
  for (const l of record.layers) {
    const t = st.tensors[l.tensor];
    assert.ok(t, `map ${l.tensor} missing`);
    assert.deepEqual(t.shape, [l.rows, l.cols]);
    if (l.kind !== 'residual') assert.ok(Number.isFinite(l.diagnostics.cost));
    // rows sum to 1
    for (let i = 0; i < l.rows; i++) {
      let s = 0;
      for (let j = 0; j < l.cols; j++) s += t.data[i * l.cols + j];
      assert.ok(Math.abs(s - 1) < 1e-3, `${l.tensor} row ${i} sums to ${s}`);
    }
  }
  assert.ok(record.layers.some((l) => l.name === 'blocks.2.attn.q' && l.rows === 48 && l.cols === 48));
  // The default refit (regmean) is recorded per layer: in run.json's refit list and in the layers' diagnostics.
  assert.equal(record.recipe.refit, 'regmean');
  assert.equal(record.refit?.length, 3 * 6 + 1);
  for (const r of record.refit!) assert.ok(r.errorRefit <= r.errorAverage && r.errorAverage > 0, r.name);
  const fc1 = record.layers.find((l) => l.name === 'blocks.0.mlp.fc1')!;
  assert.ok(fc1.diagnostics.refitError < fc1.diagnostics.refitErrorAverage);
  // Progress: stages in order, per-layer events.
  const stages = [...new Set(events.map((e) => e.stage))];
  assert.deepEqual(stages, ['load', 'activations', 'align', 'refit', 'write', 'evaluate', 'done']);
  assert.ok(events.filter((e) => e.stage === 'align' && e.layer).length >= 3 + 3 * 6);
  // The fused model is the anchor's graph with new values.
  const fused = loadModel(path.join(runDir, 'fused.onnx'));
  assert.equal(fused.summary().parameterCount, loadModel(S11).summary().parameterCount);
});

test('three models (heterogeneous partner included) fuse and report every parent', async () => {
  const runsDir = tempDir();
  const { record } = await fuseModels({ models: [S11, S10, W72], data: CALIB, evalData: EVAL, evalLimit: 500, runsDir, recipe: { samples: 50 } }, {});
  assert.deepEqual(
    record.metrics.map((m) => m.label),
    ['vit48_s11.onnx (anchor)', 'vit48_s10.onnx', 'vit72_s12.onnx', 'ot'],
  ); // no vanilla: widths differ
  assert.ok(record.layers.some((l) => l.model === 1) && record.layers.some((l) => l.model === 2 && l.rows === 72 && l.cols === 48));
  const fused = loadModel(path.join(record.fusedModel));
  assert.equal(fused.summary().parameterCount, loadModel(S11).summary().parameterCount);
});

test('weights α and weight-based alignment need no calibration data when evaluation is skipped', async () => {
  const runsDir = tempDir();
  const { record } = await fuseModels({ models: [S11, S10], runsDir, skipEval: true, recipe: { preset: 'weights', weights: [0.7, 0.3] } }, {});
  assert.equal(record.metrics.length, 0);
  assert.equal(record.recipe.alignBy, 'wts');
  assert.deepEqual(record.recipe.weights, [0.7, 0.3]);
});

async function expectFailure(run: () => Promise<unknown>, code: string, pattern: RegExp, runsDir: string, node?: string): Promise<void> {
  await assert.rejects(run, (err: unknown) => {
    assert.ok(err instanceof OtfuseError, `not an OtfuseError: ${err}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    if (node) assert.equal(err.node, node);
    return true;
  });
  const left = fs.existsSync(runsDir) ? fs.readdirSync(runsDir) : [];
  assert.deepEqual(left, [], `left behind: ${left}`);
}

test('cancellation during alignment leaves no run folder and no output', async () => {
  const runsDir = path.join(tempDir(), 'runs');
  const output = path.join(tempDir(), 'never.onnx');
  const ac = new AbortController();
  await expectFailure(
    () =>
      fuseModels(
        { models: [S10, S11], data: CALIB, runsDir, output, skipEval: true },
        {
          signal: ac.signal,
          onProgress: (e) => {
            if (e.stage === 'align') ac.abort();
          },
        },
      ),
    'CANCELLED',
    /cancelled/,
    runsDir,
  );
  assert.ok(!fs.existsSync(output));
  // ...and cancellation during evaluation (inside the folder build) removes the half-built folder.
  const ac2 = new AbortController();
  await expectFailure(
    () =>
      fuseModels(
        { models: [S10, S11], data: CALIB, evalData: EVAL, runsDir, output },
        {
          signal: ac2.signal,
          onProgress: (e) => {
            if (e.stage === 'evaluate') ac2.abort();
          },
        },
      ),
    'CANCELLED',
    /cancelled/,
    runsDir,
  );
  assert.ok(!fs.existsSync(output));
});

test('bad inputs: clear errors naming file and node, and nothing written', async () => {
  const dir = tempDir();
  const runsDir = path.join(dir, 'runs');
  const save = (name: string, m: ReturnType<typeof loadModel>) => {
    const f = path.join(dir, name);
    m.save(f);
    return f;
  };
  const s10 = loadModel(S10);
  const shallow = save('shallow.onnx', dropLastBlock(s10));
  await expectFailure(
    () => fuseModels({ models: [S11, shallow], data: CALIB, runsDir }, {}),
    'MISMATCH',
    /2 transformer blocks but the anchor .* has 3/,
    runsDir,
  );
  const six = save('six.onnx', sixHeads(s10));
  await expectFailure(() => fuseModels({ models: [S11, six], data: CALIB, runsDir }, {}), 'MISMATCH', /6 attention heads but the anchor .* has 4/, runsDir);
  const mlp = path.join(dir, 'mlp.onnx');
  mlpModel(mlp).save(mlp);
  await expectFailure(() => fuseModels({ models: [S11, mlp], data: CALIB, runsDir }, {}), 'BAD_MODEL', /mlp\.onnx.*not a transformer/, runsDir, 'flatten');
  const odd = save('odd.onnx', replaceOp(s10, '/vit/encoder/layer.1/intermediate/intermediate_act_fn/Erf', 'Hardmax'));
  await expectFailure(
    () => fuseModels({ models: [S11, odd], data: CALIB, runsDir }, {}),
    'UNSUPPORTED',
    /odd\.onnx.*Hardmax/,
    runsDir,
    '/vit/encoder/layer.1/intermediate/intermediate_act_fn/Erf',
  );
  // Data that does not fit the model (14×14 images).
  const npz = path.join(dir, 'small.npz');
  fs.writeFileSync(npz, encodeNpz({ x: { data: new Float32Array(8 * 196), shape: [8, 1, 14, 14] }, y: { data: new BigInt64Array(8), shape: [8] } }));
  await expectFailure(() => fuseModels({ models: [S11, S10], data: npz, runsDir }, {}), 'BAD_DATA', /small\.npz.*\[1, ?14, ?14\]/, runsDir);
  // A bad recipe names the field.
  await expectFailure(
    () => fuseModels({ models: [S11, S10], data: CALIB, runsDir, recipe: { solver: 'simplex' as never } }, {}),
    'BAD_USAGE',
    /'solver'/,
    runsDir,
  );
  // A missing model file.
  await expectFailure(() => fuseModels({ models: [S11, path.join(dir, 'nope.onnx')], data: CALIB, runsDir }, {}), 'BAD_MODEL', /nope\.onnx/, runsDir);
});

test('a run with a finetune stage keeps the finetuned model in the folder and reports ot+finetune', async () => {
  const runsDir = tempDir();
  const { runDir, record } = await fuseModels(
    {
      models: [S11, S10],
      data: CALIB,
      evalData: EVAL,
      evalLimit: 300,
      runsDir,
      recipe: { samples: 50 },
      finetune: { data: path.join(EXAMPLES, 'data', 'fmnist-train-5k.json'), maxSteps: 3, batchSize: 32 },
    },
    {},
  );
  assert.deepEqual(fs.readdirSync(runDir).sort(), ['.otfuse-owner.json', 'finetuned.onnx', 'fused.onnx', 'maps.safetensors', 'run.json']);
  assert.equal(record.metrics[record.metrics.length - 1].label, 'ot+finetune');
  assert.equal(record.finetune?.output, path.join(runDir, 'finetuned.onnx'));
  assert.equal(record.finetune?.steps, 3);
  assert.ok(record.timings.finetune > 0);
});

test('per-layer progress counts up to the number of solved maps', async () => {
  for (const recipe of [{}, { preset: 'exact' as const }, { qk: 'joint' as const }]) {
    const events: ProgressEvent[] = [];
    await fuseModels(
      { models: [S11, S10], data: CALIB, runsDir: tempDir(), skipEval: true, recipe: { ...recipe, samples: 20 } },
      { onProgress: (e) => events.push(e) },
    );
    const align = events.filter((e) => e.stage === 'align');
    assert.ok(align.length > 0);
    assert.ok(align.every((e) => e.total === align[0].total));
    assert.equal(align[align.length - 1].done, align[0].total, JSON.stringify(recipe));
  }
});

test('staged activation capture (one block at a time) gives the same fused model with a smaller peak', async () => {
  const { fuseLoaded } = await import('../../worker/jobs/run');
  const { resolveRecipe } = await import('../../worker/fusion/recipe');
  const { openDataset } = await import('../../worker/data/dataset');
  const calib = openDataset({ path: CALIB, limit: 40 });
  const models = [loadModel(S11), loadModel(S10)];
  const all = await fuseLoaded({ models, recipe: { ...resolveRecipe({ samples: 40, residualPolicy: 'weighted_matrix' }), capture: 'all' }, calib });
  const staged = await fuseLoaded({ models, recipe: { ...resolveRecipe({ samples: 40, residualPolicy: 'weighted_matrix' }), capture: 'staged' }, calib });
  for (const name of models[0].initializerNames()) {
    assert.deepEqual(Array.from(staged.fused.getInitializer(name).data), Array.from(all.fused.getInitializer(name).data), name);
  }
  assert.ok(staged.activationBytes < all.activationBytes / 2, `staged peak ${staged.activationBytes} vs all ${all.activationBytes}`);
});
