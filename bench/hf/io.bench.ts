// Hugging Face I/O at BERT-base size (110M parameters, 438 MB of F32 safetensors), side by side with PyTorch:
// otfuse import (safetensors → ONNX graph), export (ONNX → safetensors, byte-identical), and load + one forward pass
// of 8×128 tokens (otfuse eval on the folder vs scripts/fixtures/torch_load_hf.py), interleaved, each a fresh process.
// Prerequisite: /usr/bin/python3 scripts/fixtures/make_hf.py --bert-base .cache/hf-bench/bert-base
// Run: npm run build && node dist-bench/hf/io.bench.js [rounds=2]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { machine, markdownTable, runWithPeakRss } from '../common';

const ROOT = process.cwd();
const DIR = path.join(ROOT, '.cache', 'hf-bench', 'bert-base');
const BATCH = path.join(ROOT, '.cache', 'hf-bench', 'bert-base-batch.npz');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const rounds = Number(process.argv[2] ?? 2);

if (!fs.existsSync(path.join(DIR, 'model.safetensors'))) {
  console.error(`missing ${DIR}: run /usr/bin/python3 scripts/fixtures/make_hf.py --bert-base .cache/hf-bench/bert-base`);
  process.exit(2);
}
const onnxFile = path.join(ROOT, '.cache', 'hf-bench', 'bert-base.onnx');
const out = path.join(ROOT, '.cache', 'hf-bench', 'bert-base-export');
const rows: Record<string, { s: number[]; mib: number[] }> = {};
const record = (what: string, s: number, mib: number) => {
  (rows[what] ??= { s: [], mib: [] }).s.push(s);
  rows[what].mib.push(mib);
};

for (let r = 0; r < rounds; r++) {
  const imp = runWithPeakRss(CLI, ['import', DIR, '-o', onnxFile]);
  if (imp.code !== 0) throw new Error('import failed');
  record('otfuse import (read safetensors, build graph, write .onnx)', imp.seconds, imp.peakMiB);
  const exp = runWithPeakRss(CLI, ['export', onnxFile, '--like', DIR, '-o', out, '--force']);
  if (exp.code !== 0) throw new Error('export failed');
  if (!fs.readFileSync(path.join(out, 'model.safetensors')).equals(fs.readFileSync(path.join(DIR, 'model.safetensors'))))
    throw new Error('export is not byte-identical');
  record('otfuse export (.onnx → safetensors, checked byte-identical, reloaded)', exp.seconds, exp.peakMiB);
  const ev = runWithPeakRss(CLI, ['eval', DIR, '--data', BATCH, '--batch-size', '8', '--provider', 'cpu', '--json']);
  if (ev.code !== 0) throw new Error('eval failed');
  record('otfuse eval on the folder: import + ORT session + forward 8×128', ev.seconds, ev.peakMiB);
  const t0 = performance.now();
  const py = spawnSync('/usr/bin/python3', [path.join(ROOT, 'scripts', 'fixtures', 'torch_load_hf.py'), DIR, BATCH], {
    encoding: 'utf8',
    env: { ...process.env, THREADS: '1' },
  });
  const seconds = (performance.now() - t0) / 1000;
  if (py.status !== 0) throw new Error(py.stderr);
  const j = JSON.parse(py.stdout);
  record('PyTorch 1.13: load safetensors into the module + forward 8×128 (1 thread)', seconds, j.peak_mib);
  record(`  of which PyTorch load ${j.load_s.toFixed(1)} s, forward ${j.forward_s.toFixed(1)} s`, NaN, NaN);
}
const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const table = markdownTable(
  ['step (fresh process, wall time incl. start-up)', 'median s', 'peak RSS MiB'],
  Object.entries(rows).map(([k, v]) => [k, Number.isNaN(med(v.s)) ? '' : med(v.s).toFixed(1), Number.isNaN(med(v.mib)) ? '' : med(v.mib).toFixed(0)]),
);
console.log(`${machine()}; ${rounds} interleaved rounds\n\n${table}`);
