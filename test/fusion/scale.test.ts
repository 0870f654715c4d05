// Scale paths (issue 16): staged capture as chained stage subgraphs (one forward pass), the token budget, and
// weight-alignment products on ONNX Runtime against the float64 JS loops.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { analyzeModel } from '../../worker/graph/analyze';
import { captureActivations, captureGroups, StagedActivations, type CaptureOptions } from '../../worker/fusion/activations';
import { configureLinalg, linalgStats, matmulJs, matmul } from '../../worker/fusion/linalg';
import { alignInput, alignOutput, type TMap } from '../../worker/fusion/maps';
import { seededRandom } from '../../worker/random';
import { refitLevels } from '../../worker/fusion/refit';
import { gramEntries } from '../../worker/fusion/refitgrams';
import { VIT } from '../helpers';
import * as ort from 'onnxruntime-node';
import { StreamStore } from '../../worker/fusion/streams';

const BERT = path.join(process.cwd(), 'test', 'fixtures', 'bert');

const options = (over: Partial<CaptureOptions> = {}): CaptureOptions => ({
  samples: 40,
  batchSize: 16,
  tokenFilter: 'all',
  standardize: true,
  hasCls: true,
  ...over,
});

for (const [label, file, data] of [
  ['ViT', path.join(VIT, 'vit48_s10.onnx'), path.join(VIT, 'calib200.npz')],
  ['BERT (masked, cached mask bias)', path.join(BERT, 'bertD_s20.onnx'), path.join(BERT, 'calib.npz')],
] as const) {
  test(`staged capture of ${label}: one forward pass, the same matrices as capturing everything at once`, async () => {
    const model = loadModel(file);
    const plan = analyzeModel(model);
    const ds = openDataset(data);
    const all = await captureActivations(model, plan, ds, options());
    assert.equal(all.stats.passes, 1);
    const staged = new StagedActivations(model, plan, ds, options());
    const groups = captureGroups(plan);
    let compared = 0;
    for (let g = 0; g < groups.length; g++) {
      await staged.prepare(g);
      for (const spec of groups[g]) {
        const a = all.get(spec.tensor),
          b = staged.get(spec.tensor);
        assert.equal(b.samples, a.samples, spec.tensor);
        assert.equal(b.neurons, a.neurons, spec.tensor);
        let worst = 0;
        for (let i = 0; i < a.X.length; i++) worst = Math.max(worst, Math.abs(a.X[i] - b.X[i]));
        assert.ok(worst < 1e-4, `${spec.tensor}: max diff ${worst}`);
        const ma = all.absMean(spec.tensor),
          mb = staged.absMean(spec.tensor);
        for (let d = 0; d < ma.length; d++) assert.ok(Math.abs(ma[d] - mb[d]) < 1e-5 * (1 + ma[d]), `${spec.tensor} absMean`);
        compared++;
      }
    }
    assert.ok(compared > 10);
    assert.equal(staged.stats.passes, 1, 'every stage fed from the one before, not a rerun of the model');
    // Going back to stage 0 (the anchor when a third model is aligned) starts a second pass.
    await staged.prepare(0);
    assert.equal(staged.stats.passes, 2);
  });
}

test('cached stage streams spooled to a temp file: the same matrices bit for bit, nothing of them held in memory', async () => {
  for (const [file, data] of [
    [path.join(VIT, 'vit48_s10.onnx'), path.join(VIT, 'calib200.npz')],
    [path.join(BERT, 'bertD_s20.onnx'), path.join(BERT, 'calib.npz')],
  ]) {
    const model = loadModel(file);
    const plan = analyzeModel(model);
    const ds = openDataset(data);
    const inMemory = new StagedActivations(model, plan, ds, options({ streamMemoryBytes: 1 << 30 }));
    const spooled = new StagedActivations(model, plan, ds, options({ streamMemoryBytes: 0 }));
    // A budget of about two batches: some batches in memory, the rest spooled.
    const mixed = new StagedActivations(model, plan, ds, options({ streamMemoryBytes: 2 * 16 * (plan.tokens ?? 1) * plan.hidden * 4 + 1 }));
    const groups = captureGroups(plan);
    for (let g = 0; g < groups.length; g++) {
      await inMemory.prepare(g);
      await spooled.prepare(g);
      await mixed.prepare(g);
      for (const spec of groups[g]) {
        const a = inMemory.get(spec.tensor).X;
        assert.deepEqual(spooled.get(spec.tensor).X, a, `${file}: ${spec.tensor}`);
        assert.deepEqual(mixed.get(spec.tensor).X, a, `${file}: ${spec.tensor}`);
      }
    }
    assert.ok(inMemory.stats.peakCacheBytes > 0);
    assert.equal(spooled.stats.peakCacheBytes, 0, 'every cached batch went to the temp file');
    assert.ok(mixed.stats.peakCacheBytes > 0 && mixed.stats.peakCacheBytes < inMemory.stats.peakCacheBytes);
    assert.equal(spooled.stats.passes, 1);
    for (const s of [inMemory, spooled, mixed]) s.release();
  }
});

test('stream store: batches in memory up to the shared budget, spooled beyond it, every element type back bit for bit', () => {
  const budget = { limit: 100, used: 0 };
  const store = new StreamStore(budget);
  const f = new ort.Tensor(
    'float32',
    Float32Array.from([1.5, -2, Number.MIN_VALUE, 3e38, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]),
    [2, 10],
  );
  const i64 = new ort.Tensor('int64', BigInt64Array.from([1n, -(2n ** 62n), 3n]), [3]);
  const b = new ort.Tensor('bool', Uint8Array.from([1, 0, 1]), [1, 3]);
  store.put('x', f); // 80 bytes: in memory
  store.put('x', f); // over the budget: spooled
  store.put('ids', i64); // spooled
  store.put('ids', b); // 3 bytes: fits the budget
  assert.equal(budget.used, 83);
  assert.equal(store.bytes, 83);
  assert.equal(store.get('x', 0), f, 'in memory: the same tensor');
  const back = store.get('x', 1);
  assert.notEqual(back, f);
  assert.deepEqual([back.type, back.dims, Array.from(back.data as Float32Array)], ['float32', [2, 10], Array.from(f.data as Float32Array)]);
  assert.deepEqual(Array.from(store.get('ids', 0).data as BigInt64Array), [1n, -(2n ** 62n), 3n]);
  assert.deepEqual(store.info('x'), f);
  assert.deepEqual(store.info('ids'), { type: 'int64', dims: [3] });
  store.drop('x', 0);
  assert.equal(budget.used, 3);
  assert.throws(() => store.get('x', 0), /no cached batch 0 of 'x'/);
  store.delete('x');
  assert.equal(store.has('x'), false);
  assert.deepEqual(Array.from(store.get('ids', 1).data as Uint8Array), [1, 0, 1], 'the file stays while another tensor uses it');
  store.delete('ids');
  assert.equal(budget.used, 0);
  assert.equal(store.info('ids'), undefined);
});

test('capture taps: each tapped tensor once per sample, from the stage that computes it, never again on a re-run', async () => {
  const model = loadModel(path.join(BERT, 'bertD_s20.onnx'));
  const plan = analyzeModel(model);
  const ds = openDataset(path.join(BERT, 'calib.npz'));
  // The refit's layer inputs plus a graph input, which no stage computes.
  const inputs = gramEntries([model], refitLevels([plan]).flat()).map((e) => e.key);
  const graphInput = model.graph.input![0].name!;
  const seen = new Map<string, number>();
  const done: string[] = [];
  let untapped: string[] = [];
  let masked = 0;
  const tap = {
    tensors: [...inputs, graphInput],
    batch: async (t: string, data: Float32Array, dims: number[], _start: number, count: number, mask: Uint8Array | undefined, real: number | undefined) => {
      assert.equal(dims[0], count, t);
      assert.equal(
        data.length,
        dims.reduce((a, b) => a * b, 1),
      );
      if (mask) {
        assert.equal(mask.length, count * dims[1]);
        assert.ok(real! > 0 && real! < 40 * dims[1]);
        masked++;
      }
      seen.set(t, (seen.get(t) ?? 0) + count);
    },
    stageDone: async (ts: string[]) => {
      done.push(...ts);
    },
    untapped: (ts: string[]) => {
      untapped = ts;
    },
  };
  const staged = new StagedActivations(model, plan, ds, options({ tap }));
  await staged.prepare(1);
  await staged.finishTaps();
  await staged.prepare(0); // a second pass (the anchor again): no tap fires twice
  await staged.finishTaps();
  assert.deepEqual(untapped, [graphInput]);
  assert.ok(inputs.length > 4, String(inputs.length));
  for (const t of inputs) assert.equal(seen.get(t), 40, t);
  assert.deepEqual([...done].sort(), [...inputs].sort());
  assert.ok(masked > 0, 'the attention mask goes with each batch');
  assert.equal(staged.stats.passes, 2);
});

test('token budget: a seeded subset of exactly budget (sample, token) pairs, the same for every model, padding never drawn', async () => {
  const a = loadModel(path.join(BERT, 'bertD_s20.onnx')),
    b = loadModel(path.join(BERT, 'bertD_s21.onnx'));
  const ds = openDataset(path.join(BERT, 'calib.npz'));
  const full = await captureActivations(a, analyzeModel(a), ds, options({ tokenBudget: 0, standardize: false }));
  const cutA = await captureActivations(a, analyzeModel(a), ds, options({ tokenBudget: 300, standardize: false }));
  const cutB = await captureActivations(b, analyzeModel(b), ds, options({ tokenBudget: 300, standardize: false }));
  const tensor = analyzeModel(a).blocks[1].fc1.out;
  const f = full.get(tensor),
    x = cutA.get(tensor),
    y = cutB.get(tensor);
  assert.ok(f.samples > 600, `40 sentences have more than 600 real tokens (${f.samples})`);
  assert.equal(x.samples, 300);
  assert.equal(y.samples, 300);
  assert.deepEqual(cutA.stats.tokens[0], { candidates: f.samples, kept: 300 });
  // Every kept column is one of the full capture's (real, unpadded) columns, in order.
  let j = 0;
  for (let s = 0; s < x.samples; s++) {
    while (j < f.samples && f.X[j] !== x.X[s]) j++;
    assert.ok(j < f.samples, `kept column ${s} is not a real token of the full capture`);
    for (let d = 0; d < x.neurons; d += 37) assert.equal(x.X[d * x.samples + s], f.X[d * f.samples + j]);
    j++;
  }
  const other = await captureActivations(a, analyzeModel(a), ds, options({ tokenBudget: 300, tokenSeed: 7, standardize: false }));
  assert.notDeepEqual(Array.from(other.get(tensor).X.slice(0, 300)), Array.from(x.X.slice(0, 300)), 'another seed draws other tokens');
});

test('weight alignment products on ONNX Runtime match the float64 loops (f64 to 1e-12, f32 to 1e-5)', () => {
  const rand = seededRandom(3);
  const [r, k, c] = [96, 200, 150];
  const A = Float64Array.from({ length: r * k }, () => rand() - 0.5),
    B = Float64Array.from({ length: k * c }, () => rand() - 0.5);
  const ref = matmulJs(A, B, r, k, c);
  const relErr = (C: Float64Array) => {
    let e = 0,
      s = 0;
    for (let i = 0; i < C.length; i++) {
      e = Math.max(e, Math.abs(C[i] - ref[i]));
      s = Math.max(s, Math.abs(ref[i]));
    }
    return e / s;
  };
  const prev = configureLinalg({ engine: 'ort', minMacs: 0, precision: 'f64' });
  try {
    const calls = linalgStats.ortCalls;
    const C64 = matmul(A, B, r, k, c);
    assert.equal(linalgStats.ortCalls, calls + 1, 'ran on ONNX Runtime');
    assert.ok(relErr(C64) < 1e-12, `f64 ${relErr(C64)}`);
    configureLinalg({ precision: 'f32' });
    const C32 = matmul(A, B, r, k, c);
    assert.ok(relErr(C32) < 1e-5 && relErr(C32) > 1e-12, `f32 ${relErr(C32)} (rounded, so not exact)`);
    // The map products themselves: W·T and Tᵀ·W with a soft, rectangular map.
    configureLinalg({ precision: 'f64' });
    const plan = Float64Array.from({ length: k * c }, () => rand());
    const sum = plan.reduce((s, v) => s + v, 0);
    const map: TMap = { plan: plan.map((v) => v / sum), n: k, m: c };
    const W = A;
    const viaOrt = [alignInput(W, r, map, k).W, alignOutput(B.slice(0, k * 7), 7, map, 'cols')];
    configureLinalg({ engine: 'js' });
    const viaJs = [alignInput(W, r, map, k).W, alignOutput(B.slice(0, k * 7), 7, map, 'cols')];
    for (let q = 0; q < 2; q++) for (let i = 0; i < viaJs[q].length; i++) assert.ok(Math.abs(viaOrt[q][i] - viaJs[q][i]) < 1e-12 * (1 + Math.abs(viaJs[q][i])));
  } finally {
    configureLinalg(prev);
  }
});

test('models can be written with external data next to them and read back bit-identical', async () => {
  const fs = await import('node:fs');
  const { saveWithExternalData, saveModelAuto, inlineDataBytes } = await import('../../worker/onnx/external');
  const { tempDir } = await import('../helpers');
  const src = loadModel(path.join(VIT, 'vit48_s10.onnx'));
  const dir = tempDir();
  const target = path.join(dir, 'm.onnx');
  const data = saveWithExternalData(src, target);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['m.onnx', 'm.onnx.data'], 'no temp files left');
  assert.equal(data, path.join(dir, 'm.onnx.data'));
  assert.ok(fs.statSync(target).size < 100_000, `weights left the protobuf (${fs.statSync(target).size} bytes)`);
  assert.ok(fs.statSync(data).size >= inlineDataBytes(src) * 0.9);
  const back = loadModel(target);
  let compared = 0;
  for (const name of src.initializerNames()) {
    assert.deepEqual(back.getInitializer(name).data, src.getInitializer(name).data, name);
    compared++;
  }
  assert.ok(compared > 30);
  assert.ok(
    src.graph.initializer!.every((t) => (t.externalData ?? []).length === 0),
    'the source model is unchanged',
  );
  // Small models stay inline.
  assert.deepEqual(saveModelAuto(src, path.join(dir, 'inline.onnx')), [path.join(dir, 'inline.onnx')]);
});

test('map store: large maps are spooled and streamed into maps.safetensors; F16 halves the file within 4.9e-4 relative', async () => {
  const fs = await import('node:fs');
  const { MapStore } = await import('../../worker/fusion/mapstore');
  const { decodeSafetensors } = await import('../../worker/fusion/safetensors');
  const { tempDir } = await import('../helpers');
  const rand = seededRandom(5);
  const make = (n: number, m: number) => {
    const plan = Float64Array.from({ length: n * m }, () => rand() ** 3);
    const s = plan.reduce((a, b) => a + b, 0);
    return { name: `L${n}x${m}`, kind: 'mlp-fc1', map: { n, m, plan: plan.map((v) => v / s) }, diagnostics: {} };
  };
  const records = [make(8, 6), make(40, 30), make(12, 12)];
  const dir = tempDir();
  const sizes: Record<string, number> = {};
  for (const dtype of ['F32', 'F16'] as const) {
    const store = new MapStore(dtype, 100); // spool every map over 100 entries
    const kept = records.map((r) => store.add(1, r));
    assert.equal(kept[0].map.plan.length, 48, 'small maps stay in memory');
    assert.equal(kept[1].map.plan.length, 0, 'large maps are spooled');
    assert.deepEqual([kept[1].map.n, kept[1].map.m], [40, 30]);
    const file = path.join(dir, `${dtype}.safetensors`);
    store.write(file, { format: 'otfuse-maps' });
    store.release();
    sizes[dtype] = fs.statSync(file).size;
    const back = decodeSafetensors(new Uint8Array(fs.readFileSync(file))).tensors;
    for (const r of records) {
      const t = back[`m1/${r.name}`];
      assert.deepEqual(t.shape, [r.map.n, r.map.m]);
      for (let i = 0; i < t.data.length; i++) {
        const want = r.map.plan[i] * r.map.n;
        const tol = dtype === 'F32' ? 1e-7 * want + 1e-30 : 4.9e-4 * want + 3e-8;
        assert.ok(Math.abs(t.data[i] - want) <= tol, `${dtype} ${r.name}[${i}]: ${t.data[i]} vs ${want}`);
      }
    }
  }
  assert.ok(sizes.F16 < 0.6 * sizes.F32, `F16 ${sizes.F16} vs F32 ${sizes.F32} bytes`);
});

test("Sinkhorn on ONNX Runtime through the synchronous call: POT's plans on the fixtures to 1e-14, JS fallback for the rest", async () => {
  const { sinkhorn, configureSinkhornEngine } = await import('../../worker/ot/sinkhorn');
  const { potCases, f64 } = await import('../ot/helpers');
  const { runSync } = await import('../../worker/runtime/syncrun');
  let answered = 0;
  const prev = configureSinkhornEngine({
    kind: 'ort',
    minEntries: 0,
    runner: (key, model, feeds, options) => {
      const out = runSync(key, model, feeds, options);
      if (out) answered++;
      return out;
    },
  });
  try {
    for (const c of potCases()) {
      for (const reg of ['0.08', '0.01']) {
        const ref = f64(`${c.name}_sinkhorn${reg}_plan.npy`);
        const viaOrt = sinkhorn(c.a, c.b, c.M, Number(reg));
        configureSinkhornEngine({ kind: 'js', k32: false }); // the float64 kernels: ORT's graph is float64 too
        const viaJs = sinkhorn(c.a, c.b, c.M, Number(reg));
        configureSinkhornEngine({ kind: 'ort' });
        let dPot = 0,
          dJs = 0;
        for (let k = 0; k < ref.length; k++) {
          dPot = Math.max(dPot, Math.abs(viaOrt.plan[k] - ref[k]));
          dJs = Math.max(dJs, Math.abs(viaOrt.plan[k] - viaJs.plan[k]));
        }
        assert.ok(dPot < 1e-14, `${c.name} reg ${reg}: ${dPot} from POT`);
        assert.ok(dJs < 1e-14, `${c.name} reg ${reg}: ${dJs} from JS`);
        assert.equal(viaOrt.iterations, viaJs.iterations, `${c.name} reg ${reg} iterations`);
        assert.equal(viaOrt.method, viaJs.method);
      }
    }
    assert.ok(answered >= 8, `ONNX Runtime answered ${answered} of 8 solves`);
  } finally {
    configureSinkhornEngine(prev);
  }
});
