// Progress in words (issue 27 item 7): stage names (the baseline phase named), elapsed time, overall ETA from the
// last run of the same job, else the stage's own rate.
import test from 'node:test';
import assert from 'node:assert/strict';
import { duration, progressLine, stageName, timeText } from '../../contracts/progress';

test('durations read as a person would say them', () => {
  assert.equal(duration(4.4), '4 s');
  assert.equal(duration(65), '1 min 05 s');
  assert.equal(duration(3720), '1 h 02 min');
  assert.equal(duration(-3), '0 s');
});

test('the baseline finetune is named (its percentage restarting has a reason)', () => {
  assert.equal(stageName('finetune'), 'finetuning the fused model');
  assert.equal(stageName('finetune', 'baseline: vit48_s10.onnx finetuned the same way'), 'baseline: the anchor finetuned the same way');
  assert.equal(stageName('align'), 'aligning layers (OT)');
  assert.equal(stageName('something-new'), 'something-new');
});

test('ETA: overall from the last run of the job; without one, the stage from its own rate', () => {
  const t0 = 1_000_000;
  // 10 s in, the stage started 4 s ago and is 1/5 done: 16 s left in the stage.
  const stage = timeText(t0 + 10_000, { startedAt: t0, stageStartedAt: t0 + 6_000 }, 1, 5);
  assert.deepEqual(stage, { elapsed: '10 s', left: '16 s', overall: false });
  // The last run took 60 s: 50 s left overall.
  assert.deepEqual(timeText(t0 + 10_000, { startedAt: t0, stageStartedAt: t0 + 6_000, expectedSeconds: 60 }, 1, 5), {
    elapsed: '10 s',
    left: '50 s',
    overall: true,
  });
  // Slower than last time: never less than what the stage still needs.
  assert.equal(timeText(t0 + 58_000, { startedAt: t0, stageStartedAt: t0 + 50_000, expectedSeconds: 60 }, 1, 2).left, '8 s');
  assert.equal(
    progressLine(t0 + 10_000, { startedAt: t0, stageStartedAt: t0 + 6_000 }, 'align', undefined, 1, 5),
    'aligning layers (OT) 20% · 10 s elapsed · about 16 s left in this stage',
  );
  assert.equal(progressLine(t0 + 2_000, { startedAt: t0, stageStartedAt: t0 }, 'load'), 'loading models · 2 s elapsed');
});
