// The honest protocol in run.json (FuseRequest.baselines): the parents' ensemble, and the fused model, every
// parent and vanilla given the same finetune over seeds; the fused baseline's seed 0 is the run's own finetune.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fuseModels } from '../../worker/jobs/run';
import { EXAMPLES, tempDir } from '../helpers';

const S10 = path.join(EXAMPLES, 'vit48_s10.onnx');
const S11 = path.join(EXAMPLES, 'vit48_s11.onnx');

test('baselines: ensemble row, same-finetune rows per start with per-seed accuracies, consistent with the run', async () => {
  const runsDir = tempDir();
  const { record } = await fuseModels(
    {
      models: [S11, S10],
      data: path.join(EXAMPLES, 'calib200.npz'),
      evalData: path.join(EXAMPLES, 'data/fmnist-test-2k.json'),
      evalLimit: 300,
      runsDir,
      recipe: { preset: 'paper' },
      baselines: { seeds: 2 },
      finetune: { data: path.join(EXAMPLES, 'data/fmnist-train-5k.json'), maxSteps: 6, batchSize: 64, keep: 'last', teachers: [S11, S10] },
    },
    {},
  );
  // With --baselines the run also measures each non-anchor parent aligned onto the anchor (a diagnostic row).
  const aligned = record.metrics.filter((m) => m.role === 'aligned');
  assert.deepEqual(
    aligned.map((m) => [m.model, m.data?.n]),
    [[1, 300]],
  );
  const rows = record.metrics.filter((m) => m.role !== 'aligned');
  const labels = rows.map((m) => m.label);
  assert.deepEqual(
    labels.slice(-5),
    ['ensemble (mean logits)', 'ot+finetune (2 seeds)', 'vit48_s11.onnx+finetune (2 seeds)', 'vit48_s10.onnx+finetune (2 seeds)', 'vanilla+finetune (2 seeds)'],
    labels.join(' | '),
  );
  // Each row's typed role: what the views and the CLI key off (never the label above).
  assert.deepEqual(
    rows.slice(-5).map((m) => [m.role, m.start ?? '', m.model ?? '', m.data?.n]),
    [
      ['ensemble', '', '', 300],
      ['finetuned', 'fused', '', 300],
      ['baseline', 'anchor', 0, 300],
      ['baseline', 'parent', 1, 300],
      ['baseline', 'vanilla', '', 300],
    ],
  );
  const by = (l: string) => record.metrics.find((m) => m.label === l)!;
  const ens = by('ensemble (mean logits)');
  assert.ok(ens.accuracy! > 0.8, `ensemble ${ens.accuracy}`);
  for (const m of record.metrics.filter((x) => x.seeds)) {
    assert.equal(m.seeds!.length, 2);
    assert.ok(Math.abs(m.accuracy! - (m.seeds![0] + m.seeds![1]) / 2) < 1e-12);
    assert.ok(Math.abs(m.sd! - Math.abs(m.seeds![0] - m.seeds![1]) / Math.SQRT2) < 1e-12);
  }
  // Same start, same seed, same steps, same teachers: the baseline's seed 0 reproduces the run's ot+finetune.
  assert.equal(by('ot+finetune (2 seeds)').seeds![0], by('ot+finetune').accuracy);
  // Six distillation steps lift the one-shot fusion (paper setting) but not to the parents.
  assert.ok(by('ot+finetune').accuracy! > by('ot').accuracy!);
});
