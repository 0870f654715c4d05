// End-to-end fusion wall time (load, graph analysis, activations, OT, averaging, write) and peak RSS on the
// fixture pairs, as a ratio against the reference implementation's wall times (reference-results.json,
// activations + OT fusion + building the fused model, 1 PyTorch thread, same machine kind).
// Usage: node dist-bench/fusion/fuse.bench.js            (prints a markdown table)
//        node dist-bench/fusion/fuse.bench.js --child K  (one cold fusion, for the peak-RSS measurement)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fuseModels } from '../../worker/jobs/run';
import type { FuseRecipe } from '../../worker/types';
import { machine, markdownTable, runWithPeakRss } from '../common';

const VIT = path.join(process.cwd(), 'test', 'fixtures', 'vit');
const ref = JSON.parse(fs.readFileSync(path.join(VIT, 'reference-results.json'), 'utf8'));

interface Case {
  key: string;
  label: string;
  other: string;
  recipe: FuseRecipe;
  refKey: string;
}
const CASES: Case[] = [
  { key: 'sinkhorn', label: 'vit48_s10 → s11, Sinkhorn 0.08 (default)', other: 'vit48_s10.onnx', recipe: {}, refKey: 'vit48_sinkhorn' },
  { key: 'emd', label: 'vit48_s10 → s11, EMD', other: 'vit48_s10.onnx', recipe: { solver: 'emd' }, refKey: 'vit48_emd' },
  { key: 'het', label: 'vit72_s12 → s11 (heterogeneous), Sinkhorn 0.08', other: 'vit72_s12.onnx', recipe: {}, refKey: 'het72to48_sinkhorn' },
  {
    key: 'reference',
    label: "vit48_s10 → s11, preset 'reference' (batch 1)",
    other: 'vit48_s10.onnx',
    recipe: { preset: 'reference' },
    refKey: 'vit48_sinkhorn',
  },
];

async function fuseOnce(c: Case): Promise<Record<string, number>> {
  const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-bench-'));
  try {
    const { record } = await fuseModels(
      {
        models: [path.join(VIT, 'vit48_s11.onnx'), path.join(VIT, c.other)],
        data: path.join(VIT, 'calib200.npz'),
        runsDir,
        skipEval: true,
        recipe: c.recipe,
        provider: 'cpu',
      },
      {},
    );
    const t = record.timings;
    return { ...t, endToEnd: t.load + t.analyze + t.activations + t.align + t.average + t.write };
  } finally {
    fs.rmSync(runsDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const child = process.argv.indexOf('--child');
  if (child > 0) {
    const c = CASES.find((x) => x.key === process.argv[child + 1])!;
    const t = await fuseOnce(c);
    process.stdout.write(JSON.stringify(t));
    return;
  }
  console.log(`machine: ${machine()}`);
  const rows: (string | number)[][] = [];
  for (const c of CASES) {
    await fuseOnce(c); // warm-up (JIT, ONNX Runtime initialisation)
    const runs: Record<string, number>[] = [];
    for (let i = 0; i < 3; i++) runs.push(await fuseOnce(c));
    runs.sort((a, b) => a.endToEnd - b.endToEnd);
    const med = runs[1];
    const cold = runWithPeakRss(process.argv[1], ['--child', c.key]);
    const coldT = JSON.parse(cold.stdout) as Record<string, number>;
    const r = ref.fusion[c.refKey].timings_s;
    const refTotal = r.activations + r.otfusion + r.build_fused_model;
    rows.push([
      c.label,
      med.activations.toFixed(3),
      (med.align + med.average).toFixed(3),
      med.write.toFixed(3),
      med.endToEnd.toFixed(3),
      coldT.endToEnd.toFixed(3),
      cold.seconds.toFixed(2),
      cold.peakMiB.toFixed(0),
      `${r.activations.toFixed(2)} + ${r.otfusion.toFixed(2)} + ${r.build_fused_model.toFixed(2)} = ${refTotal.toFixed(2)}`,
      `${(refTotal / med.endToEnd).toFixed(1)}× (cold ${(refTotal / coldT.endToEnd).toFixed(1)}×)`,
    ]);
  }
  console.log(
    markdownTable(
      [
        'pair',
        'activations s',
        'OT + average s',
        'write s',
        'end-to-end s (warm, median of 3)',
        'end-to-end s (cold process)',
        'process wall s (incl. Node + ORT start)',
        'peak RSS MiB',
        'reference s (acts + OT + build)',
        'speed-up',
      ],
      rows,
    ),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
