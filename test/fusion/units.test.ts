// Small pure pieces: safetensors round trip and layout, recipe validation and schema agreement, map algebra.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { encodeSafetensors, decodeSafetensors } from '../../worker/fusion/safetensors';
import { validateRecipe, resolveRecipe, recipeSchemaText, recipeUsage, RECIPE_FIELDS } from '../../worker/fusion/recipe';
import { RESIDUAL_POLICIES, namesOf } from '../../worker/fusion/registry';
import { SOLVER_NAMES, solveOT } from '../../worker/ot/solvers';
import { alignInput, alignOutput, combineMaps, identityMap, type TMap } from '../../worker/fusion/maps';
import { keptTokens, standardizeRows } from '../../worker/fusion/samples';
import { OtfuseError } from '../../worker/errors';

test('safetensors: byte layout and round trip', () => {
  const a = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const b = Float32Array.from([-0.5]);
  const bytes = encodeSafetensors({ 'm1/x': { shape: [2, 3], data: a }, y: { shape: [1], data: b } }, { format: 't' });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0, 'data is 8-byte aligned');
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8'));
  assert.deepEqual(header['m1/x'], { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
  assert.deepEqual(header.y, { dtype: 'F32', shape: [1], data_offsets: [24, 28] });
  assert.deepEqual(header.__metadata__, { format: 't' });
  assert.equal(bytes.length, 8 + n + 28);
  assert.equal(new DataView(bytes.buffer).getFloat32(8 + n + 4, true), 2);
  const back = decodeSafetensors(bytes);
  assert.deepEqual(Array.from(back.tensors['m1/x'].data), Array.from(a));
  assert.deepEqual(back.tensors.y.shape, [1]);
  assert.deepEqual(back.metadata, { format: 't' });
  assert.throws(() => decodeSafetensors(bytes.subarray(0, 20)), OtfuseError);
});

test('recipe validation names the bad field', () => {
  const bad: [unknown, RegExp][] = [
    [{ solver: 'simplex' }, /'solver' must be one of emd, sinkhorn \(got 'simplex'\)/],
    [{ reg: 0 }, /'reg' must be > 0/],
    [{ samples: 2.5 }, /'samples' must be an integer/],
    [{ weights: [1] }, /'weights' must be an array of at least 2/],
    [{ weights: [1, -1] }, /'weights\[1\]' must be ≥ 0/],
    [{ weights: [0, 0] }, /'weights' must not sum to 0/],
    [{ standardize: 'yes' }, /'standardize' must be true or false/],
    [{ refit: 'ols' }, /'refit' must be one of none, regmean, regmean\+\+/],
    [{ refitRidge: -1 }, /'refitRidge' must be ≥ 0/],
    [{ reg: Infinity }, /'reg' must be a number/],
    [{ colour: 'red' }, /unknown field 'colour'/],
    [JSON.parse('{"__proto__": {"solver": "emd"}}'), /forbidden field '__proto__'/],
    [JSON.parse('{"constructor": {"prototype": {}}}'), /forbidden field 'constructor'/],
    [{ residualPolicy: 'toString' }, /'residualPolicy' must be one of/],
    [[], /must be a JSON object/],
    [null, /must be a JSON object/],
  ];
  for (const [obj, re] of bad)
    assert.throws(
      () => validateRecipe(obj),
      (e: unknown) => e instanceof OtfuseError && e.code === 'BAD_USAGE' && re.test(e.message),
      String(re),
    );
  assert.deepEqual(validateRecipe({ solver: 'emd', reg: 0.1, $schema: './x.json' }), { solver: 'emd', reg: 0.1, $schema: './x.json' });
  assert.deepEqual(validateRecipe({ solver: undefined, refit: 'regmean++' }), { solver: undefined, refit: 'regmean++' });
  assert.equal(({} as Record<string, unknown>).solver, undefined, 'no prototype pollution');
});

test('recipe defaults are the reference best settings; presets sit under explicit fields', () => {
  const d = resolveRecipe({});
  assert.deepEqual(
    [d.alignBy, d.solver, d.reg, d.groundMetric, d.costNorm, d.residualPolicy, d.samples],
    ['acts', 'sinkhorn', 0.08, 'euclidean', 'max', 'mean', 200],
  );
  assert.deepEqual(
    [d.outNorm, d.batchSize, d.float32Cost, d.costEngine, d.capture, d.headAware, d.standardize, d.tokenFilter],
    ['rows', 50, false, 'ort', 'auto', false, true, 'all'],
  );
  const r = resolveRecipe({ preset: 'reference', solver: 'emd' });
  assert.equal(r.solver, 'emd');
  assert.equal(r.batchSize, 1);
  assert.equal(resolveRecipe({ preset: 'exact' }).qk, 'eq_t_map');
  assert.equal(resolveRecipe({ preset: 'exact' }).headAware, true);
  assert.equal(resolveRecipe({ preset: 'exact' }).solver, 'emd');
});

test('recipe.schema.json is generated from the registries (node scripts/gen-recipe-schema.mjs)', () => {
  const committed = fs.readFileSync(path.join(process.cwd(), 'worker', 'fusion', 'recipe.schema.json'), 'utf8');
  assert.equal(committed, recipeSchemaText(), 'recipe.schema.json is stale: run node scripts/gen-recipe-schema.mjs');
  const schema = JSON.parse(committed);
  assert.deepEqual(schema.properties.residualPolicy.enum, namesOf(RESIDUAL_POLICIES));
  assert.deepEqual(schema.properties.solver.enum, SOLVER_NAMES);
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(Object.keys(schema.properties), Object.keys(RECIPE_FIELDS));
});

test('README lists every recipe flag with its values (from the registries)', () => {
  const readme = fs.readFileSync(path.join(process.cwd(), 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('<!-- recipe-options:start -->'), readme.indexOf('<!-- recipe-options:end -->')).replace(/\s+/g, ' ');
  assert.ok(section.length > 100, 'README has the recipe-options section');
  for (const token of recipeUsage()) {
    const flag = token.slice(1, -1); // '[--solver emd|sinkhorn]' → '--solver emd|sinkhorn'
    assert.ok(section.includes('`' + flag + '`'), `README is missing \`${flag}\``);
  }
});

test('solveOT dispatches through the solver registry', () => {
  const M = Float64Array.from([0, 1, 1, 0]);
  const e = solveOT([0.5, 0.5], [0.5, 0.5], M, { solver: 'emd' });
  assert.deepEqual(Array.from(e.plan), [0.5, 0, 0, 0.5]);
  const s = solveOT([0.5, 0.5], [0.5, 0.5], M, { solver: 'sinkhorn', reg: 0.05 });
  assert.ok(s.plan[0] > 0.49 && s.plan[1] < 0.01);
  assert.throws(() => solveOT([0.5, 0.5], [0.5, 0.5], M, { solver: 'sinkhorn', reg: -1 }), /'reg' must be a finite number > 0/);
  assert.throws(() => solveOT([0.5, 0.5], [0.5, 0.5], M, { solver: 'constructor' as never }), /unknown OT solver 'constructor'/);
});

test('map algebra: permutation maps move rows/columns; identity is a no-op; residual mix keeps marginals', () => {
  // other neuron i ↦ anchor neuron p[i]
  const p = [2, 0, 1];
  const plan = new Float64Array(9);
  p.forEach((j, i) => (plan[i * 3 + j] = 1 / 3));
  const map: TMap = { plan, n: 3, m: 3 };
  const W = Float64Array.from([1, 2, 3, 4, 5, 6]); // 3 out × 2 in
  const out = alignOutput(W, 2, map, 'rows');
  assert.deepEqual(Array.from(out), [3, 4, 5, 6, 1, 2]); // anchor row j = other row p⁻¹(j)
  const Win = Float64Array.from([1, 2, 3]); // 1 out × 3 in
  assert.deepEqual(Array.from(alignInput(Win, 1, map, 3).W), [2, 3, 1]);
  const id = identityMap(3);
  assert.deepEqual(Array.from(alignOutput(W, 2, id, 'rows')), Array.from(W));
  const mix = combineMaps(map, id, [0.25], [0.75]);
  const col = [0, 1, 2].map((j) => [0, 1, 2].reduce((s, i) => s + mix.plan[i * 3 + j], 0));
  for (const c of col) assert.ok(Math.abs(c - 1 / 3) < 1e-12);
  // Rectangular (6 other → 3 anchor): 'rows' sums into anchor neurons, 'cols' averages.
  const rect = new Float64Array(18);
  for (let i = 0; i < 6; i++) rect[i * 3 + (i % 3)] = 1 / 6;
  const v = Float64Array.from([1, 1, 1, 1, 1, 1]);
  assert.deepEqual(Array.from(alignOutput(v, 1, { plan: rect, n: 6, m: 3 }, 'rows')), [2, 2, 2]);
  assert.deepEqual(Array.from(alignOutput(v, 1, { plan: rect, n: 6, m: 3 }, 'cols')), [1, 1, 1]);
});

test('token filters and standardisation', () => {
  assert.deepEqual(
    keptTokens(17, 'all', true),
    Array.from({ length: 17 }, (_, i) => i),
  );
  assert.deepEqual(keptTokens(17, 'cls', true), [0]);
  assert.deepEqual(keptTokens(17, 'window', true, [4, 4]), [0, 6, 7, 10, 11]);
  assert.deepEqual(keptTokens(16, 'window', false, [4, 4]), [5, 6, 9, 10]);
  const X = Float32Array.from([1, 2, 3, 4, 5, 5, 5, 5]);
  standardizeRows(X, 2, 4);
  const mean = (X[0] + X[1] + X[2] + X[3]) / 4;
  assert.ok(Math.abs(mean) < 1e-6);
  const sd = Math.sqrt(X.slice(0, 4).reduce((s, x) => s + x * x, 0) / 3);
  assert.ok(Math.abs(sd - 1) < 1e-6);
  assert.deepEqual(Array.from(X.slice(4)), [0, 0, 0, 0]);
});

test('CLI: fuse flags and their values come from the registries', async () => {
  const { runCli } = await import('../helpers');
  const help = runCli(['--help']);
  for (const token of recipeUsage()) assert.ok(help.stdout.replace(/\s+/g, ' ').includes(token), `usage lacks ${token}`);
  const bad = runCli(['fuse', 'a.onnx', 'b.onnx', '--refit', 'ols']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--refit must be one of none, regmean, regmean\+\+; got 'ols'/);
  const ridge = runCli(['fuse', 'a.onnx', 'b.onnx', '--refit-ridge', '-1']);
  assert.equal(ridge.code, 2);
  assert.match(ridge.stderr, /'refitRidge' must be ≥ 0/);
});
