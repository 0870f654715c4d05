// `otfuse merge` end to end (run folder, run.json, lineage, evaluation rows, exit codes, HF folders) and the
// shared-base notice of `otfuse fuse`.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { detectSharedBase, findBase } from '../../worker/merge/sharedBase';
import '../../worker/hf';
import type { RunRecord } from '../../worker/types';
import { EXAMPLES, ROOT, runCli, tempDir, VIT } from '../helpers';

const MERGE = path.join(ROOT, 'test', 'fixtures', 'merge');
const BASE = path.join(VIT, 'vit48_s10.onnx');
const FT_A = path.join(MERGE, 'vit48_s10_ft_a.onnx');
const FT_B = path.join(MERGE, 'vit48_s10_ft_b.onnx');
const EVAL = path.join(EXAMPLES, 'data', 'fmnist-test-2k.json');
const HF = path.join(ROOT, 'test', 'fixtures', 'hf');

function onlyRun(runsDir: string): { dir: string; record: RunRecord } {
  const runs = fs.readdirSync(runsDir).filter((n) => !n.startsWith('.'));
  assert.equal(runs.length, 1, runs.join(', '));
  const dir = path.join(runsDir, runs[0]);
  return { dir, record: JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as RunRecord };
}

test('merge --method dare_ties: run folder, run.json (method, parameters, seed), lineage, rows for each fine-tune, the base, the merge and the ensemble', () => {
  const dir = tempDir();
  const out = path.join(dir, 'merged.onnx');
  const runsDir = path.join(dir, 'runs');
  const args = ['merge', FT_A, FT_B, '--base', BASE, '--method', 'dare_ties', '--density', '0.5', '--seed', '5', '--lambda', '0.9'];
  const r = runCli([...args, '-o', out, '--runs-dir', runsDir, '--eval-data', EVAL, '--eval-limit', '400', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const { dir: runDir, record } = onlyRun(runsDir);
  assert.deepEqual(record.merge?.params, { weights: [1, 1], density: 0.5, lambda: 0.9, seed: 5, normalize: false });
  assert.equal(record.merge?.method, 'dare_ties');
  assert.equal(record.merge?.base, BASE);
  assert.equal(record.merge?.tensors, 56);
  assert.equal(record.fusedModel, out);
  assert.deepEqual(
    record.metrics.map((m) => m.label),
    ['vit48_s10_ft_a.onnx', 'vit48_s10_ft_b.onnx', 'vit48_s10.onnx (base)', 'merged (dare_ties)', 'ensemble (mean logits)'],
  );
  for (const m of record.metrics) assert.ok(m.accuracy! > 0.3 && m.accuracy! <= 1, `${m.label} ${m.accuracy}`);
  // The output and the run's copy are the same model, and say what they are.
  const merged = loadModel(out);
  const inRun = loadModel(path.join(runDir, 'merged.onnx'));
  for (const n of merged.initializerNames()) assert.deepEqual(merged.getInitializer(n).data, inRun.getInitializer(n).data);
  const meta = merged.summary().metadata!;
  assert.equal(meta['otfuse.kind'], 'merged');
  assert.deepEqual(JSON.parse(meta['otfuse.merge']).params.seed, 5);
  assert.equal(JSON.parse(meta['otfuse.parents']).length, 3);
  // The same command again gives the same model (seeded).
  const out2 = path.join(dir, 'again.onnx');
  assert.equal(runCli([...args, '-o', out2, '--runs-dir', path.join(dir, 'runs2')]).code, 0);
  const again = loadModel(out2);
  for (const n of merged.initializerNames()) assert.deepEqual(again.getInitializer(n).data, merged.getInitializer(n).data);
});

test('bad inputs exit 2 with the file / tensor / flag named, and leave nothing behind', () => {
  const dir = tempDir();
  const runsDir = path.join(dir, 'runs');
  const out = path.join(dir, 'x.onnx');
  const cases: [string[], RegExp][] = [
    [
      [FT_A, path.join(VIT, 'vit72_s12.onnx'), '--base', BASE, '--method', 'task_arithmetic'],
      /vit72_s12\.onnx.*'vit\.embeddings\.cls_token'.*shape \[1, 1, 72\]/,
    ],
    [[FT_A, FT_B, '--method', 'ties'], /vit48_s10_ft_a\.onnx.*needs --base/],
    [[FT_A, FT_B, '--base', BASE, '--method', 'ties', '--density', '1.5'], /--density must be .*≤ 1/],
    [[FT_A, FT_B, '--base', BASE, '--method', 'dare_linear', '--density', '0'], /--density must be .*> 0/],
    [[FT_A, FT_B, '--method', 'slerp'], /needs --t/],
    [[FT_A, FT_B, BASE, '--method', 'slerp', '--t', '0.5'], /exactly 2 models/],
    [[FT_A, FT_B, '--method', 'linear', '--lambda', '2'], /--lambda does not apply to method 'linear'/],
    [[FT_A, FT_B, '--method', 'soup'], /--method must be one of linear, task_arithmetic/],
    [[FT_A, FT_B, '--base', FT_A, '--method', 'ties'], /base is also listed/],
  ];
  for (const [args, re] of cases) {
    const r = runCli(['merge', ...args, '-o', out, '--runs-dir', runsDir]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
  }
  assert.ok(!fs.existsSync(out));
  assert.ok(!fs.existsSync(runsDir) || fs.readdirSync(runsDir).length === 0);
});

test('Hugging Face folders in, a Hugging Face folder out (linear merge = the average of the two checkpoints)', () => {
  const dir = tempDir();
  const out = path.join(dir, 'bert-merged');
  const [A, B] = ['bert-tiny-cls-a', 'bert-tiny-cls-b'].map((n) => path.join(HF, n));
  const r = runCli(['merge', A, B, '--method', 'linear', '-o', out, '--runs-dir', path.join(dir, 'runs')]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(fs.existsSync(path.join(out, 'config.json')) && fs.existsSync(path.join(out, 'model.safetensors')));
  assert.equal(onlyRun(path.join(dir, 'runs')).record.merge?.hfOutput, out);
  // The model card says what it is: a merge, not an OT fusion.
  const card = fs.readFileSync(path.join(out, 'README.md'), 'utf8');
  assert.match(card, /Same-base merge \(`linear`/);
  assert.doesNotMatch(card, /OT fusion of|Imfeld/);
  const [ma, mb, mo] = [A, B, out].map((f) => loadModel(f));
  let checked = 0;
  for (const n of ma.initializerNames()) {
    const [x, y, z] = [ma, mb, mo].map((m) => m.getInitializer(n).data);
    if (ma.getInitializer(n).dataType !== 1) continue;
    for (let j = 0; j < x.length; j++) assert.equal(z[j], Math.fround((x[j] + y[j]) / 2), `${n}[${j}]`);
    checked++;
  }
  assert.ok(checked > 20, `${checked} tensors checked`);
  // An output folder from ONNX inputs is refused before any work.
  const bad = runCli(['merge', FT_A, FT_B, '--method', 'linear', '-o', path.join(dir, 'folder-out')]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /needs Hugging Face folders/);
});

test('shared-base detection: fine-tunes of one base are recognised, independently trained models are not', () => {
  const shared = detectSharedBase([FT_A, FT_B].map((f) => loadModel(f)));
  assert.equal(shared.shared, true, shared.message);
  assert.ok(shared.medianRatio < 0.25 && shared.maxRatio < 0.75, JSON.stringify(shared));
  const independent = detectSharedBase([BASE, path.join(VIT, 'vit48_s11.onnx')].map((f) => loadModel(f)));
  assert.equal(independent.shared, false);
  assert.ok(independent.medianRatio > 0.8, JSON.stringify(independent));
  // A fine-tune and its own base share it too; different widths cannot be compared.
  assert.equal(detectSharedBase([BASE, FT_A].map((f) => loadModel(f))).shared, true);
  assert.equal(detectSharedBase([BASE, path.join(VIT, 'vit72_s12.onnx')].map((f) => loadModel(f))).shared, false);
});

test("the base named by a parent's config (_name_or_path) is found in the workspace", () => {
  const ws = tempDir();
  const src = path.join(HF, 'bert-tiny-cls-a');
  for (const name of ['ft-1', 'my-base']) {
    fs.mkdirSync(path.join(ws, name));
    for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(ws, name, f));
  }
  const config = JSON.parse(fs.readFileSync(path.join(ws, 'ft-1', 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(ws, 'ft-1', 'config.json'), JSON.stringify({ ...config, _name_or_path: 'org/my-base' }));
  assert.deepEqual(findBase([path.join(ws, 'ft-1')]), { base: path.join(ws, 'my-base'), baseName: 'org/my-base' });
  fs.writeFileSync(path.join(ws, 'ft-1', 'config.json'), JSON.stringify({ ...config, _name_or_path: 'org/elsewhere' }));
  assert.deepEqual(findBase([path.join(ws, 'ft-1')]), { baseName: 'org/elsewhere' });
});

test('fuse of the two fine-tunes says that they share a base (CLI and run.json); of two independent models it does not', () => {
  const dir = tempDir();
  const fuse = (a: string, b: string, runsDir: string) =>
    runCli(['fuse', a, b, '--data', path.join(VIT, 'calib200.npz'), '--align-by', 'wts', '--no-eval', '--runs-dir', runsDir]);
  const r = fuse(FT_A, FT_B, path.join(dir, 'a'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /these models share a base; alignment is the identity; consider `merge`/);
  const shared = onlyRun(path.join(dir, 'a')).record.sharedBase!;
  assert.equal(shared.shared, true);
  // OT itself finds (mostly) the identity for fine-tunes of one base; for independent models almost never.
  assert.ok(shared.identityMaps!.maps >= 20 && shared.identityMaps!.identity >= shared.identityMaps!.maps / 2, JSON.stringify(shared.identityMaps));
  const s = fuse(BASE, path.join(VIT, 'vit48_s11.onnx'), path.join(dir, 'b'));
  assert.equal(s.code, 0, s.stderr);
  assert.doesNotMatch(s.stdout, /share a base/);
  const independent = onlyRun(path.join(dir, 'b')).record.sharedBase!;
  assert.equal(independent.shared, false);
  assert.ok(independent.identityMaps!.identity <= 3, JSON.stringify(independent.identityMaps));
});
