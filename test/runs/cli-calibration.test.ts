// `otfuse fuse` without --eval-data does not present calibration accuracy as a result: the table is labelled,
// and --json carries evalIsCalibration.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { EXAMPLES, runCli, tempDir, VIT } from '../helpers';

const S10 = path.join(VIT, 'vit48_s10.onnx');
const S11 = path.join(VIT, 'vit48_s11.onnx');
const CALIB = path.join(VIT, 'calib200.npz');
const EVAL = path.join(EXAMPLES, 'data', 'fmnist-test-2k.json');

test('fuse without --eval-data labels the numbers as calibration-data numbers', () => {
  const runs = tempDir();
  const r = runCli(['fuse', S11, S10, '--data', CALIB, '--preset', 'weights', '--eval-limit', '100', '--runs-dir', runs, '--provider', 'cpu']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /measured on the CALIBRATION data \(no separate --eval-data\): not a held-out result/);
  const j = runCli(['fuse', S11, S10, '--data', CALIB, '--preset', 'weights', '--eval-limit', '100', '--runs-dir', runs, '--provider', 'cpu', '--json']);
  assert.equal(j.code, 0, j.stderr);
  assert.equal(JSON.parse(j.stdout).record.evalIsCalibration, true);
  // The calibration file given again as --eval-data is still calibration data; a separate file is not.
  const same = runCli([
    'fuse',
    S11,
    S10,
    '--data',
    CALIB,
    '--eval-data',
    CALIB,
    '--preset',
    'weights',
    '--eval-limit',
    '100',
    '--runs-dir',
    runs,
    '--provider',
    'cpu',
  ]);
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stdout, /CALIBRATION/);
  const held = runCli([
    'fuse',
    S11,
    S10,
    '--data',
    CALIB,
    '--eval-data',
    EVAL,
    '--preset',
    'weights',
    '--eval-limit',
    '100',
    '--runs-dir',
    runs,
    '--provider',
    'cpu',
  ]);
  assert.equal(held.code, 0, held.stderr);
  assert.doesNotMatch(held.stdout, /CALIBRATION/);
});
