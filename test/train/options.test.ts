// Issue 26 (options from one place): every finetune option is one FINETUNE_OPTIONS entry, and the CLI flags of
// `otfuse finetune` / `otfuse fuse --finetune`, the range checks (exit 2 before any work), the usage text and the
// finetune's defaults all derive from it.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { engine } from '../../worker/api';
import { OtfuseError } from '../../worker/errors';
import { NUMBER_RULES, checkRequestNumbers } from '../../worker/numbers';
import { FINETUNE_DEFAULTS, FINETUNE_OPTIONS, finetuneOptions } from '../../worker/train/options';
import { VIT, runCli, tempDir } from '../helpers';

const A = path.join(VIT, 'vit48_s10.onnx');
const B = path.join(VIT, 'vit48_s11.onnx');
const CALIB = path.join(VIT, 'calib200.npz');

/** A value just outside the option's domain (below its lower bound, or above its upper one). */
function outside(o: { min?: number; above?: number; max?: number; below?: number; integer?: boolean }): number {
  if (o.min !== undefined) return o.min - 1;
  if (o.above !== undefined) return o.above;
  if (o.below !== undefined) return o.below;
  return o.max! * 10;
}

test('each finetune option: its flag is known to `otfuse finetune`, listed in --help with its default and range, and refused outside its domain (exit 2, nothing written)', () => {
  const help = runCli(['--help']).stdout;
  for (const { option } of finetuneOptions()) {
    assert.ok(help.includes(`[--${option.flag} ${option.default ?? 'N'}]`), `usage token for --${option.flag}`);
    assert.match(help, new RegExp(`--${option.flag} [\\[(]`), `range of --${option.flag} in --help`);
    assert.equal(NUMBER_RULES[option.flag], option, `--${option.flag}: the CLI checks the registry's domain`);
    const dir = tempDir();
    const teacher = option.distill ? ['--teacher', B] : [];
    const r = runCli(['finetune', A, '--data', CALIB, '-o', path.join(dir, 'out.onnx'), ...teacher, `--${option.flag}`, String(outside(option))], { cwd: dir });
    assert.equal(r.code, 2, `--${option.flag} ${outside(option)}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`--${option.flag} must be`), r.stderr);
    assert.deepEqual(fs.readdirSync(dir), [], 'nothing written');
  }
});

test('fuse --finetune takes the registry options marked `fuse`; the distillation ones need a --teacher in both commands', () => {
  const dir = tempDir();
  for (const { option } of finetuneOptions().filter(({ option }) => option.fuse)) {
    const r = runCli(['fuse', A, B, '--data', CALIB, '--finetune', '--train-data', CALIB, `--${option.flag}`, String(outside(option))], { cwd: dir });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`--${option.flag} must be`), `fuse --${option.flag}: ${r.stderr}`);
  }
  const notInFuse = finetuneOptions().find(({ option }) => !option.fuse)!.option.flag;
  const unknown = runCli(['fuse', A, B, '--data', CALIB, '--finetune', '--train-data', CALIB, `--${notInFuse}`, '1'], { cwd: dir });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, new RegExp(`unknown option --${notInFuse}`));
  for (const cmd of [
    ['finetune', A, '--data', CALIB, '-o', path.join(dir, 'x.onnx'), '--kd-temp', '3'],
    ['fuse', A, B, '--data', CALIB, '--finetune', '--train-data', CALIB, '--kd-alpha', '0.3'],
  ]) {
    const r = runCli(cmd, { cwd: dir });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--kd-temp, --kd-alpha and --trunk-epochs need at least one --teacher/);
  }
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('the engine checks every finetune request field against the registry (finetune, finetuneRun and a fuse request’s finetune stage)', async () => {
  for (const { field, option } of finetuneOptions()) {
    const bad = { [field]: outside(option) };
    assert.throws(
      () => checkRequestNumbers(bad),
      (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_USAGE' && e.message.includes(`--${option.flag}`),
      field,
    );
    assert.throws(
      () => checkRequestNumbers({ finetune: bad }),
      (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_USAGE',
      field,
    );
    if (option.default !== undefined) checkRequestNumbers({ [field]: option.default });
  }
  // finetuneRun (the editor's Quick Finetune on a run) is checked on entry too, before the run folder is opened.
  await assert.rejects(
    engine.finetuneRun({ runDir: path.join(tempDir(), 'no-such-run'), data: CALIB, lr: 0 }),
    (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_USAGE' && /--lr must be/.test(e.message),
  );
});

test('the defaults are the registry’s (and every default lies inside its own domain)', () => {
  assert.deepEqual(FINETUNE_DEFAULTS, {
    epochs: 1,
    lr: 2e-4,
    batchSize: 128,
    weightDecay: 0.01,
    labelSmoothing: 0,
    clipNorm: 1,
    seed: 0,
    kdTemp: 2,
    kdAlpha: 0.5,
    trunkEpochs: 160,
  });
  for (const [field, option] of Object.entries(FINETUNE_OPTIONS)) {
    const d = (option as { default?: number }).default;
    if (d !== undefined) checkRequestNumbers({ [field]: d });
  }
});
