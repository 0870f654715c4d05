// The automatic anchor (`--anchor auto`): the parent with the lowest loss on the held-out calibration slice (the one
// the auto-tune scores on) becomes the anchor whatever the order given; run.json records every parent's score.
import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fuseModels } from '../../worker/jobs/run';
import { heldOutSplit, sliceDataset } from '../../worker/jobs/autotune';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { evaluateModel } from '../../worker/runtime/evaluate';
import { OtfuseError } from '../../worker/errors';
import type { RunRecord } from '../../worker/types';
import { ROOT, tempDir } from '../helpers';

const BERT = path.join(ROOT, 'test', 'fixtures', 'bert');
const WEAK = path.join(BERT, 'bertD_vanilla_s20_s21.onnx'); // the plain average of the pair: a much weaker parent
const GOOD = path.join(BERT, 'bertD_s20.onnx');
const CALIB = path.join(BERT, 'calib.npz');

test('--anchor auto: the weaker parent listed first is not the anchor; the choice and every score are in run.json', async () => {
  const runsDir = tempDir();
  const { record, runDir } = await fuseModels({
    models: [WEAK, GOOD],
    anchor: 'auto',
    data: CALIB,
    skipEval: true,
    recipe: { preset: 'exact', samples: 64 },
    runsDir,
  });
  assert.equal(record.anchor, GOOD);
  assert.deepEqual(record.models, [GOOD, WEAK]);
  const choice = record.anchorChoice!;
  assert.equal(choice.chosen, GOOD);
  // The scores are the parents' on the held-out slice (samples after the fit samples), recomputed here.
  const calib = openDataset(CALIB);
  const { fitSamples, heldOut } = heldOutSplit(calib.size, 64);
  assert.equal(choice.heldOutSamples, Math.min(heldOut, calib.size - fitSamples));
  const slice = sliceDataset(calib, fitSamples, heldOut);
  for (const p of choice.parents) {
    const r = await evaluateModel(loadModel(p.model), slice, { batchSize: 256 });
    assert.ok(Math.abs(r.loss - p.loss) < 1e-6 && r.accuracy === p.accuracy, `${path.basename(p.model)}: ${p.loss} vs ${r.loss}`);
  }
  const [weak, good] = [choice.parents.find((p) => p.model === WEAK)!, choice.parents.find((p) => p.model === GOOD)!];
  assert.ok(good.loss < weak.loss, `the chosen parent has the lower loss (${good.loss} vs ${weak.loss})`);
  // Measured on: the calibration file (path relative to the run, its sha256) and the held-out count.
  assert.equal(choice.measuredOn?.n, choice.heldOutSamples);
  assert.equal(path.resolve(runDir, choice.measuredOn!.path), CALIB);
  assert.equal(choice.measuredOn!.sha256, crypto.createHash('sha256').update(fs.readFileSync(CALIB)).digest('hex'));
  const written = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')) as RunRecord;
  assert.deepEqual(written.anchorChoice, choice);
});

test('--anchor auto needs calibration data to score on', async () => {
  await assert.rejects(
    fuseModels({ models: [WEAK, GOOD], anchor: 'auto', recipe: { preset: 'weights' }, skipEval: true, runsDir: tempDir() }),
    (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_USAGE' && /--anchor auto .*give --data/.test(e.message),
  );
});
