// Parameter slices (LinearRef.slice): a layer may be a slice of a packed initializer (fused QKV,
// nn.MultiheadAttention's in_proj). The fixture ViT is rewritten so Q, K and V come from one packed MatMul
// (+ one packed bias) followed by a Split — once with the packed weight stored [out, in] behind a Transpose
// (rows = neurons, as in_proj_weight), once stored [in, out] (columns = neurons) — and the plans are given the
// slices by hand (graph analysis of packed exports is another module's job). Fusion must read and write every
// parameter through its slice and keep the packed layout.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { loadModel, OnnxModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { analyzeModel, type LinearRef, type ModelPlan } from '../../worker/graph/analyze';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { ParamSink, readWeight, weightRegion } from '../../worker/fusion/slices';
import { OtfuseError } from '../../worker/errors';
import { Spool } from '../../worker/onnx/spool';
import { VIT, maxAbsDiff } from '../helpers';
import { permutedCopy, logitsOf } from './vit-helpers';
import { rebuild } from '../graph/surgery';

const calib = openDataset({ path: path.join(VIT, 'calib200.npz'), limit: 64 });
const BATCH = 32;

type Layout = 'outIn' | 'inOut';

/** Q, K, V of every block → one packed MatMul + Add + Split; returns the model and its plan with slices. */
function packQKV(src: OnnxModel, layout: Layout): { model: OnnxModel; plan: ModelPlan } {
  const plan0 = analyzeModel(src);
  const model = src.clone();
  const plan: ModelPlan = { ...plan0, placed: new Set(plan0.placed), blocks: plan0.blocks.map((b) => ({ ...b, attn: { ...b.attn } })) };
  const g = model.graph;
  for (const b of plan.blocks) {
    const parts = [b.attn.q, b.attn.k, b.attn.v];
    const d = parts[0].inDim;
    const outs = parts.map((l) => l.outDim);
    const total = outs.reduce((a, c) => a + c, 0);
    const mm = g.node!.find((n) => n.name === parts[0].node)!;
    const x = mm.input![0];
    // Packed values: canonical rows [q; k; v] ([total, d]), stored as asked.
    const rows = new Float32Array(total * d),
      bias = new Float32Array(total);
    let off = 0;
    for (const l of parts) {
      const W = readWeight(src.getInitializer(l.weight), l);
      for (let i = 0; i < W.length; i++) rows[off * d + i] = W[i];
      bias.set(src.getInitializer(l.bias!).data, off);
      off += l.outDim;
    }
    const stored =
      layout === 'outIn'
        ? rows
        : (() => {
            const t = new Float32Array(rows.length);
            for (let o = 0; o < total; o++) for (let i = 0; i < d; i++) t[i * total + o] = rows[o * d + i];
            return t;
          })();
    const p = `blocks.${b.index}.qkv`;
    const F = onnx.TensorProto.DataType.FLOAT;
    g.initializer!.push(
      onnx.TensorProto.create({ name: `${p}.weight`, dims: layout === 'outIn' ? [total, d] : [d, total], dataType: F, rawData: new Uint8Array(stored.buffer) }),
    );
    g.initializer!.push(onnx.TensorProto.create({ name: `${p}.bias`, dims: [total], dataType: F, rawData: new Uint8Array(bias.buffer) }));
    g.initializer!.push(
      onnx.TensorProto.create({
        name: `${p}.split`,
        dims: [3],
        dataType: onnx.TensorProto.DataType.INT64,
        rawData: new Uint8Array(new BigInt64Array(outs.map(BigInt)).buffer),
      }),
    );
    const nodes: onnx.INodeProto[] = [];
    let w = `${p}.weight`;
    if (layout === 'outIn') {
      nodes.push(
        onnx.NodeProto.create({
          opType: 'Transpose',
          name: `${p}/Transpose`,
          input: [w],
          output: [`${p}.wT`],
          attribute: [onnx.AttributeProto.create({ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 0] })],
        }),
      );
      w = `${p}.wT`;
    }
    nodes.push(onnx.NodeProto.create({ opType: 'MatMul', name: `${p}/MatMul`, input: [x, w], output: [`${p}.mm`] }));
    nodes.push(onnx.NodeProto.create({ opType: 'Add', name: `${p}/Add`, input: [`${p}.mm`, `${p}.bias`], output: [`${p}.out`] }));
    nodes.push(
      onnx.NodeProto.create({
        opType: 'Split',
        name: `${p}/Split`,
        input: [`${p}.out`, `${p}.split`],
        output: parts.map((l) => l.out),
        attribute: [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 })],
      }),
    );
    // Drop the three MatMul + Add pairs and their initializers; the packed nodes go where the first one was.
    const drop = new Set<onnx.INodeProto>();
    for (const l of parts) {
      const m = g.node!.find((n) => n.name === l.node)!;
      drop.add(m);
      drop.add(g.node!.find((n) => n.output![0] === l.out)!);
    }
    const at = g.node!.indexOf(mm);
    g.node!.splice(at, 0, ...(nodes as onnx.NodeProto[]));
    g.node = g.node!.filter((n) => !drop.has(n));
    const gone = new Set(parts.flatMap((l) => [l.weight, l.bias!]));
    g.initializer = g.initializer!.filter((t) => !gone.has(t.name!));
    for (const n of gone) plan.placed.delete(n);
    plan.placed.add(`${p}.weight`);
    plan.placed.add(`${p}.bias`);
    let offset = 0;
    const sliced = parts.map((l): LinearRef => {
      const r: LinearRef = {
        ...l,
        node: `${p}/MatMul`,
        weight: `${p}.weight`,
        bias: `${p}.bias`,
        outIn: layout === 'outIn',
        slice: { offset, size: l.outDim },
      };
      offset += l.outDim;
      return r;
    });
    [b.attn.q, b.attn.k, b.attn.v] = sliced;
  }
  return { model: rebuild(model), plan };
}

const s10 = loadModel(path.join(VIT, 'vit48_s10.onnx'));
const s11 = loadModel(path.join(VIT, 'vit48_s11.onnx'));

test('slices: the packed rewrites compute the same function', async () => {
  const want = await logitsOf(s10, calib, BATCH);
  for (const layout of ['outIn', 'inOut'] as const) {
    const { model } = packQKV(s10, layout);
    assert.ok(model.initializerNames().includes('blocks.0.qkv.weight'));
    assert.ok(!model.initializerNames().some((n) => n.includes('attention.query')), 'the separate Q weights are gone');
    assert.ok(maxAbsDiff(want, await logitsOf(model, calib, BATCH)) < 1e-4, layout);
  }
});

test('slices: exact EMD fusion of a packed model with a packed, permuted copy reproduces its logits and keeps the packed layout', async () => {
  const anchor = packQKV(s10, 'outIn');
  const other = packQKV(permutedCopy(s10, 7).model, 'inOut'); // the other export stores it the other way round
  for (const recipe of [resolveRecipe({ solver: 'emd', qk: 'eq_t_map', samples: 64 }), resolveRecipe({ preset: 'exact', alignBy: 'wts', refit: 'none' })]) {
    const r = await fuseLoaded({ models: [anchor.model, other.model], plans: [anchor.plan, other.plan], recipe, calib });
    const err = maxAbsDiff(await logitsOf(s10, calib, BATCH), await logitsOf(r.fused, calib, BATCH));
    assert.ok(err < 1e-4, `${recipe.alignBy}: max abs logit error ${err}`);
    assert.deepEqual(r.fused.getInitializer('blocks.1.qkv.weight').dims, [144, 48]);
    assert.deepEqual(r.fused.initializerNames().sort(), anchor.model.initializerNames().sort());
    assert.ok(r.vanilla, 'same widths: vanilla is built from the slices even though the layouts differ');
  }
});

for (const refit of ['none', 'regmean', 'regmean++'] as const)
  test(`slices: fusing packed models gives the same model as fusing the unpacked ones (refit ${refit})`, async () => {
    const recipe = resolveRecipe({ samples: 64, refit }); // Sinkhorn: soft maps, so every slice's values really mix
    const plain = await fuseLoaded({ models: [s10, s11], recipe, calib });
    const a = packQKV(s10, 'outIn'),
      b = packQKV(s11, 'inOut');
    const packed = await fuseLoaded({ models: [a.model, b.model], plans: [a.plan, b.plan], recipe, calib });
    const planPlain = analyzeModel(s10);
    for (const [which, result] of [
      ['fused', [plain.fused, packed.fused]],
      ['vanilla', [plain.vanilla!, packed.vanilla!]],
    ] as const) {
      const [u, p] = result;
      for (const blk of planPlain.blocks) {
        const packedW = p.getInitializer(`blocks.${blk.index}.qkv.weight`);
        const packedB = p.getInitializer(`blocks.${blk.index}.qkv.bias`).data;
        for (const [k, l] of [blk.attn.q, blk.attn.k, blk.attn.v].entries()) {
          const sl = { ...a.plan.blocks[blk.index].attn[(['q', 'k', 'v'] as const)[k]] };
          const got = readWeight(packedW, sl);
          const want = readWeight(u.getInitializer(l.weight), l);
          assert.ok(maxAbsDiff(got, want) < (refit === 'none' ? 1e-6 : 1e-4), `${which} block ${blk.index} ${k}: weight differs by ${maxAbsDiff(got, want)}`);
          const gb = packedB.subarray(sl.slice!.offset, sl.slice!.offset + sl.slice!.size);
          assert.ok(maxAbsDiff(gb, u.getInitializer(l.bias!).data) < (refit === 'none' ? 1e-6 : 1e-4), `${which} block ${blk.index} ${k}: bias`);
        }
      }
      for (const name of u.initializerNames().filter((n) => !n.includes('attention.attention'))) {
        if (!p.initializerNames().includes(name)) continue;
        assert.ok(maxAbsDiff(u.getInitializer(name).data, p.getInitializer(name).data) < (refit === 'none' ? 1e-6 : 1e-4), `${which}: ${name}`);
      }
      const err = maxAbsDiff(await logitsOf(u, calib, BATCH), await logitsOf(p, calib, BATCH));
      assert.ok(err < (refit === 'none' ? 1e-4 : 1e-3), `${which}: logits differ by ${err}`);
    }
    if (refit !== 'none') assert.equal(packed.refit!.length, plain.refit!.length);
  });

test('slices: a packed initializer with elements in no slice, or a slice that does not fit, is an error', () => {
  const l: LinearRef = { node: 'n', weight: 'w', outIn: true, inDim: 2, outDim: 2, out: 'o', slice: { offset: 0, size: 2 } };
  const sink = new ParamSink(() => 8, 'm.onnx');
  sink.put('w', [1, 2, 3, 4], weightRegion(l, [4, 2]));
  assert.throws(
    () => sink.finish(),
    (e: unknown) => e instanceof OtfuseError && /element 4 of 8 is in no layer's slice/.test(e.message),
  );
  sink.put('w', [5, 6, 7, 8], weightRegion({ ...l, slice: { offset: 2, size: 2 } }, [4, 2]));
  assert.deepEqual(Array.from(sink.finish().get('w')!), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.throws(() => weightRegion({ ...l, slice: { offset: 3, size: 2 } }, [4, 2]), /does not fit/);
  // Column slices of an [in, out] weight: element (i, offset + o).
  const c: LinearRef = { ...l, outIn: false, slice: { offset: 1, size: 2 } };
  assert.deepEqual(Array.from(readWeight({ dims: [2, 4], data: [0, 1, 2, 3, 10, 11, 12, 13] }, c)), [1, 11, 2, 12]);
  // Writing different values twice over the same elements is a conflict (tied parameters must agree).
  const s2 = new ParamSink(() => 4);
  s2.put('t', [1, 2, 3, 4]);
  assert.throws(() => s2.put('t', [1, 2, 3, 5]), /shared by layers whose alignments disagree/);
});

test('slices: a spooling sink gives back what was written, checks tied values after spooling, and frees its file', () => {
  const spool = new Spool('otfuse-test-aligned.spool');
  const sink = new ParamSink((name) => (name === 'w' ? 8 : 4), 'm.onnx', spool);
  const l: LinearRef = { node: 'n', weight: 'w', outIn: true, inDim: 2, outDim: 2, out: 'o', slice: { offset: 0, size: 2 } };
  sink.put('a', [1, 2, 3, 4]);
  sink.put('w', [1, 2, 3, 4], weightRegion(l, [4, 2]));
  assert.ok(sink.has('w') && sink.has('a'));
  sink.put('w', [5, 6, 7, 8], weightRegion({ ...l, slice: { offset: 2, size: 2 } }, [4, 2]));
  // 'a' was complete and left for the spool: writing it again is checked against the spooled values.
  sink.put('a', [1, 2, 3, 4]);
  assert.throws(() => sink.put('a', [1, 2, 3, 9]), /shared by layers whose alignments disagree/);
  const values = sink.finish();
  assert.deepEqual(Array.from(values.get('w')!), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(Array.from(values.get('a')!), [1, 2, 3, 4]);
  assert.equal(values.get('missing'), undefined);
  assert.throws(() => sink.finishInMemory(), /spooling/);
  values.release!();
  assert.throws(() => values.get('a'), /ended early/);
});
