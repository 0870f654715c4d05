// Same-base merge methods on a real fixture: two fine-tunes of vit48_s10 (`otfuse finetune` on Fashion-MNIST
// classes 0–4 and 5–9; scripts/fixtures/make_merge.sh). Each method is checked against its formula or against the
// independent NumPy reference (scripts/fixtures/merge_reference.py → test/fixtures/merge/reference.json).
import test from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadModel, type OnnxModel } from '../../worker/onnx/model';
import { mergeLoaded } from '../../worker/merge/merge';
import { getMergeMethod, MERGE_METHODS } from '../../worker/merge/registry';
import { resolveMergeParams } from '../../worker/merge/params';
import { seededRandom } from '../../worker/random';
import { OtfuseError } from '../../worker/errors';
import type { MergeMethodName, MergeParams } from '../../worker/types';
import { ROOT, VIT } from '../helpers';

const MERGE = path.join(ROOT, 'test', 'fixtures', 'merge');
const BASE = path.join(VIT, 'vit48_s10.onnx');
const FT_A = path.join(MERGE, 'vit48_s10_ft_a.onnx');
const FT_B = path.join(MERGE, 'vit48_s10_ft_b.onnx');

const base = loadModel(BASE);
const a = loadModel(FT_A);
const b = loadModel(FT_B);
const names = base.initializerNames();

function merge(method: MergeMethodName, params: MergeParams, models = [a, b], withBase: OnnxModel | undefined = base) {
  const m = getMergeMethod(method);
  return mergeLoaded({ models, base: m.needsBase ? withBase : undefined, method: m, params: resolveMergeParams(m, params, models.length) });
}

const get = (m: OnnxModel, name: string) => m.getInitializer(name).data;

test('the fixture: two different fine-tunes of one base (every tensor moved, differently)', () => {
  assert.equal(names.length, 56);
  let movedA = 0;
  let movedB = 0;
  for (const n of names) {
    const [x, y, z] = [get(base, n), get(a, n), get(b, n)];
    if (y.some((v, j) => v !== x[j])) movedA++;
    if (z.some((v, j) => v !== x[j])) movedB++;
  }
  assert.ok(movedA >= 50 && movedB >= 50, `${movedA} / ${movedB} tensors moved`);
});

test('task_arithmetic equals θ_base + λ Σ w_i (θ_i − θ_base) to float32 precision (no normalisation by default)', () => {
  const w = [1, 0.5];
  const lambda = 0.7;
  const r = merge('task_arithmetic', { weights: w, lambda });
  assert.equal(r.tensors, 56);
  let worst = 0;
  let moved = 0;
  for (const n of names) {
    const [x, y, z, got] = [get(base, n), get(a, n), get(b, n), get(r.merged, n)];
    for (let j = 0; j < x.length; j++) {
      const want = x[j] + lambda * (w[0] * (y[j] - x[j]) + w[1] * (z[j] - x[j]));
      worst = Math.max(worst, Math.abs(got[j] - want) / Math.max(1e-3, Math.abs(want)));
      // The normalised variant (÷ Σ w = 1.5) is a different model: the default must not divide.
      if (Math.abs(got[j] - (x[j] + (lambda * (w[0] * (y[j] - x[j]) + w[1] * (z[j] - x[j]))) / 1.5)) > 1e-6) moved++;
    }
  }
  assert.ok(worst <= 2 ** -23, `worst relative error ${worst}`);
  assert.ok(moved > 10000, `only ${moved} entries tell the unnormalised formula from the normalised one`);
});

test('ties and dare_* (fixed seed) match the NumPy reference on every tensor', () => {
  const ref = JSON.parse(fs.readFileSync(path.join(MERGE, 'reference.json'), 'utf8')) as {
    cases: {
      method: MergeMethodName;
      params: MergeParams;
      tensors: Record<string, { sha256: string; sum: number; l2: number; changed: number; probe: number; samples: Record<string, number> }>;
    }[];
  };
  assert.equal(ref.cases.length, 4);
  for (const c of ref.cases) {
    const r = merge(c.method, c.params);
    assert.deepEqual(Object.keys(c.tensors).sort(), [...names].sort());
    let exact = 0;
    for (const n of names) {
      const got = get(r.merged, n);
      const x = get(base, n);
      const want = c.tensors[n];
      const where = `${c.method} ${JSON.stringify(c.params)} ${n}`;
      assert.equal(
        got.reduce((k, v, j) => k + (v !== x[j] ? 1 : 0), 0),
        want.changed,
        `${where}: entries changed`,
      );
      const probe = seededRandom(99);
      let sum = 0;
      let l2 = 0;
      let dot = 0;
      for (let j = 0; j < got.length; j++) {
        sum += got[j];
        l2 += got[j] * got[j];
        dot += got[j] * (probe() - 0.5);
      }
      const close = (u: number, v: number, what: string) => assert.ok(Math.abs(u - v) <= 1e-6 * Math.max(1, Math.abs(v)), `${where}: ${what} ${u} vs ${v}`);
      close(sum, want.sum, 'sum');
      close(Math.sqrt(l2), want.l2, 'L2');
      close(dot, want.probe, 'probe');
      for (const [j, v] of Object.entries(want.samples)) close(got[Number(j)], v, `entry ${j}`);
      if (
        crypto
          .createHash('sha256')
          .update(Buffer.from(got.buffer, got.byteOffset, got.byteLength))
          .digest('hex') === want.sha256
      )
        exact++;
    }
    // Same float64 operations in the same order: bit-identical float32 tensors.
    assert.equal(exact, names.length, `${c.method}: ${exact} of ${names.length} tensors bit-identical to NumPy`);
  }
});

test('ties trims: with density 0.3 about 30 % of each task vector survives, and fewer entries move than with density 1', () => {
  const trimmed = merge('ties', { density: 0.3 });
  const full = merge('ties', { density: 1 });
  const n = 'onnx::MatMul_401';
  const x = get(base, n);
  const moved = (m: OnnxModel) => get(m, n).reduce((k, v, j) => k + (v !== x[j] ? 1 : 0), 0);
  // Union of two 30 % supports: between 30 % and 60 % of the entries.
  assert.ok(moved(trimmed.merged) >= 0.3 * x.length && moved(trimmed.merged) <= 0.6 * x.length, `${moved(trimmed.merged)} of ${x.length}`);
  assert.ok(moved(full.merged) > 0.95 * x.length);
});

test('dare: the same seed gives the same model, another seed another; density 1 is task arithmetic', () => {
  const p = { density: 0.5, seed: 3 };
  const one = merge('dare_linear', p);
  const again = merge('dare_linear', p);
  const other = merge('dare_linear', { ...p, seed: 4 });
  const ta = merge('task_arithmetic', {});
  const dense = merge('dare_linear', { density: 1 });
  let differs = 0;
  for (const n of names) {
    assert.deepEqual(get(one.merged, n), get(again.merged, n));
    if (get(one.merged, n).some((v, j) => v !== get(other.merged, n)[j])) differs++;
    assert.deepEqual(get(dense.merged, n), get(ta.merged, n));
  }
  assert.ok(differs >= 50, `${differs} tensors differ between seeds`);
});

test('slerp at t = 0 and t = 1 gives the endpoints exactly; at t = ½ it follows the great circle', () => {
  for (const [t, end] of [
    [0, a],
    [1, b],
  ] as const) {
    const r = merge('slerp', { t }, [a, b], undefined);
    for (const n of names) assert.deepEqual(get(r.merged, n), get(end, n), `t=${t} ${n}`);
  }
  // Independently trained models are far from colinear: at t = ½, θ = (θ_A + θ_B) / (2 cos(Ω/2)) when ‖θ_A‖ = ‖θ_B‖,
  // and in general sin(Ω/2)/sin Ω · (θ_A + θ_B).
  const s11 = loadModel(path.join(VIT, 'vit48_s11.onnx'));
  const r = merge('slerp', { t: 0.5 }, [base, s11], undefined);
  let spherical = 0;
  for (const n of names) {
    const [x, y, got] = [get(base, n), get(s11, n), get(r.merged, n)];
    let nx = 0;
    let ny = 0;
    let xy = 0;
    for (let j = 0; j < x.length; j++) {
      nx += x[j] * x[j];
      ny += y[j] * y[j];
      xy += x[j] * y[j];
    }
    const cos = xy / Math.sqrt(nx) / Math.sqrt(ny);
    const s = Math.abs(cos) > 0.9995 ? 0.5 : Math.sin(Math.acos(cos) / 2) / Math.sin(Math.acos(cos));
    if (Math.abs(cos) <= 0.9995) spherical++;
    for (let j = 0; j < x.length; j++) assert.ok(Math.abs(got[j] - s * (x[j] + y[j])) <= 1e-6 * Math.max(1, Math.abs(got[j])), `${n}[${j}]`);
  }
  assert.equal(r.colinear, names.length - spherical);
  assert.ok(spherical >= 30, `${spherical} tensors interpolated on the sphere`);
});

test('linear with equal weights is the plain average', () => {
  const r = merge('linear', {}, [a, b], undefined);
  for (const n of names) {
    const [y, z, got] = [get(a, n), get(b, n), get(r.merged, n)];
    for (let j = 0; j < y.length; j++) assert.equal(got[j], Math.fround((y[j] + z[j]) / 2), `${n}[${j}]`);
  }
  // Weights 3:1 move it towards A.
  const w = merge('linear', { weights: [3, 1] }, [a, b], undefined);
  const n = 'classifier.weight';
  for (let j = 0; j < 10; j++) assert.equal(get(w.merged, n)[j], Math.fround((3 * get(a, n)[j] + get(b, n)[j]) / 4));
});

test('parameters: out of their domain, not taken by the method, missing, or a wrong weight count → BAD_USAGE naming the flag', () => {
  const bad = (method: MergeMethodName, params: MergeParams, re: RegExp, models = 2) =>
    assert.throws(
      () => resolveMergeParams(getMergeMethod(method), params, models),
      (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_USAGE' && re.test(e.message),
    );
  bad('ties', { density: 0 }, /--density must be .*> 0/);
  bad('ties', { density: 1.5 }, /--density must be .*≤ 1/);
  bad('dare_ties', { density: -0.1 }, /--density/);
  bad('slerp', {}, /needs --t/);
  bad('slerp', { t: 1.2 }, /--t must be/);
  bad('linear', { density: 0.5 }, /--density does not apply to method 'linear'/);
  bad('task_arithmetic', { weights: [1, 1, 1] }, /3 entries for 2 models/);
  bad('task_arithmetic', { weights: [-1, 1] }, /--weights/);
  bad('dare_linear', { seed: 1.5 }, /--seed must be an integer/);
  // Every method's defaults resolve (mergekit's: TIES normalises, the others do not).
  for (const m of MERGE_METHODS) if (m.name !== 'slerp') resolveMergeParams(m, {}, 2);
  assert.equal(resolveMergeParams(getMergeMethod('ties'), {}, 2).normalize, true);
  assert.equal(resolveMergeParams(getMergeMethod('dare_ties'), {}, 2).normalize, false);
  assert.equal(resolveMergeParams(getMergeMethod('task_arithmetic'), {}, 2).normalize, false);
});

test('parents with a different shape or a missing parameter → MISMATCH naming the file and the tensor', () => {
  const wide = loadModel(path.join(VIT, 'vit72_s12.onnx'));
  assert.throws(
    () => merge('task_arithmetic', {}, [a, wide]),
    (e: unknown) =>
      e instanceof OtfuseError && e.code === 'MISMATCH' && e.file === wide.file && e.node === 'vit.embeddings.cls_token' && /\[1, 1, 72\]/.test(e.message),
  );
  const missing = loadModel(FT_B);
  missing.graph.initializer = missing.graph.initializer!.filter((t) => t.name !== 'classifier.bias');
  const m = getMergeMethod('linear');
  assert.throws(
    () => mergeLoaded({ models: [a, new (a.constructor as typeof OnnxModel)(missing.proto, missing.file)], method: m, params: resolveMergeParams(m, {}, 2) }),
    (e: unknown) => e instanceof OtfuseError && e.code === 'MISMATCH' && e.node === 'classifier.bias',
  );
});
