// Graph analysis: the alignment structure comes from the ONNX graph (roles, not names), survives other export
// forms (decomposed LayerNorm, GELU variants, Constant nodes as initializers, opsets 13–18), and refuses what it
// cannot place with an error naming the node and op.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel, OnnxModel } from '../../worker/onnx/model';
import { openDataset } from '../../worker/data/dataset';
import { analyzeModel, type ModelPlan } from '../../worker/graph/analyze';
import { analyzeAlignment } from '../../worker/fusion/summary';
import { OtfuseError } from '../../worker/errors';
import { VIT, maxAbsDiff } from '../helpers';
import { logitsOf } from '../fusion/vit-helpers';
import { decomposeLayerNorms, tanhGelu, geluOp, constantsToInitializers, dropLastBlock, sixHeads, replaceOp, mlpModel, unfoldedLinears } from './surgery';
import { fuseLoaded } from '../../worker/jobs/run';
import { resolveRecipe } from '../../worker/fusion/recipe';
import { permutedCopy } from '../fusion/vit-helpers';

const s10 = loadModel(path.join(VIT, 'vit48_s10.onnx'));
const calib = openDataset({ path: path.join(VIT, 'calib200.npz'), limit: 16 });

function weightOfNode(model: OnnxModel, name: string): string {
  return model.nodes.find((n) => n.name === name)!.input![1];
}

/** Structure only (which initializers play which role), for comparing export variants. */
function shape(plan: ModelPlan): unknown {
  return {
    hidden: plan.hidden,
    layers: plan.layers,
    heads: plan.heads,
    headDim: plan.headDim,
    mlp: plan.mlp,
    tokens: plan.tokens,
    embed:
      plan.embedding.kind === 'patch'
        ? [plan.embedding.patch.weight, plan.embedding.cls?.name, plan.embedding.pos?.name]
        : plan.embedding.tables.map((t) => t.name),
    blocks: plan.blocks.map((b) => [
      b.norm,
      b.ln1?.scale,
      b.ln2?.bias,
      b.attn.q.weight,
      b.attn.k.weight,
      b.attn.v.weight,
      b.attn.o.weight,
      b.fc1.weight,
      b.fc2.weight,
    ]),
    head: [plan.head.finalNorm?.scale, plan.head.classifier.weight, plan.head.classifier.outIn],
  };
}

test('the fixture ViT: blocks, heads, and Q/K/V told apart by their role in attention', () => {
  const plan = analyzeModel(s10);
  assert.equal(plan.layers, 3);
  assert.equal(plan.hidden, 48);
  assert.equal(plan.heads, 4);
  assert.equal(plan.headDim, 12);
  assert.equal(plan.mlp, 192);
  assert.equal(plan.tokens, 17);
  assert.ok(plan.embedding.kind === 'patch');
  assert.equal(plan.embedding.cls?.name, 'vit.embeddings.cls_token');
  assert.equal(plan.embedding.pos?.name, 'vit.embeddings.position_embeddings');
  assert.deepEqual(plan.embedding.patch.kernel, [1, 7, 7]);
  for (const b of plan.blocks) {
    const pre = `/vit/encoder/layer.${b.index}`;
    // The export's node names say which is which; the analysis never read them.
    assert.equal(b.attn.q.weight, weightOfNode(s10, `${pre}/attention/attention/query/MatMul`));
    assert.equal(b.attn.k.weight, weightOfNode(s10, `${pre}/attention/attention/key/MatMul`));
    assert.equal(b.attn.v.weight, weightOfNode(s10, `${pre}/attention/attention/value/MatMul`));
    assert.equal(b.attn.o.weight, weightOfNode(s10, `${pre}/attention/output/dense/MatMul`));
    assert.equal(b.fc1.weight, weightOfNode(s10, `${pre}/intermediate/dense/MatMul`));
    assert.equal(b.fc2.weight, weightOfNode(s10, `${pre}/output/dense/MatMul`));
    assert.equal(b.attn.q.bias, `vit.encoder.layer.${b.index}.attention.attention.query.bias`);
    assert.equal(b.norm, 'pre');
    assert.equal(b.attn.q.outIn, false); // MatMul weights are stored [in, out]
  }
  assert.equal(plan.head.classifier.weight, 'classifier.weight');
  assert.equal(plan.head.classifier.outIn, true); // Gemm transB=1
  assert.equal(plan.head.classes, 10);
});

test('the wide fixture: 72 wide, 4 heads × 18, MLP 288', () => {
  const plan = analyzeModel(loadModel(path.join(VIT, 'vit72_s12.onnx')));
  assert.deepEqual([plan.hidden, plan.heads, plan.headDim, plan.mlp], [72, 4, 18, 288]);
});

test('inspect --alignment text lists groups, head split and residual points', () => {
  const s = analyzeAlignment(s10);
  assert.equal(s.groups.length, 3 + 3 * 8 + 2);
  assert.equal(s.residualPoints.length, 1 + 3 * 2);
  assert.match(s.text, /3 blocks \(pre-LN\), hidden 48, 4 heads × 12, MLP 192, 17 tokens, 10 classes/);
  assert.match(s.text, /blocks\.1\.attn\.k/);
  assert.match(s.text, /input side only/);
});

const variants: [string, (m: OnnxModel) => OnnxModel, boolean][] = [
  ['decomposed LayerNorm (ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add)', decomposeLayerNorms, true],
  ['tanh-form GELU', tanhGelu, true],
  ['Gelu op (com.microsoft)', geluOp, true],
  ['Constant nodes as initializers, opset 13', (m) => constantsToInitializers(m, 13), false],
  ['Constant nodes as initializers, opset 18', (m) => constantsToInitializers(m, 18), false],
];

for (const [label, make, runs] of variants) {
  test(`same alignment structure with ${label}`, async () => {
    const variant = make(s10);
    assert.deepEqual(shape(analyzeModel(variant)), shape(analyzeModel(s10)));
    if (runs) {
      // The surgery itself is faithful: ONNX Runtime gives (nearly) the same logits.
      const err = maxAbsDiff(await logitsOf(s10, calib, 16), await logitsOf(variant, calib, 16));
      assert.ok(err < (label.includes('tanh') ? 5e-2 : 1e-4), `variant logits differ by ${err}`);
    }
  });
}

function expectError(fn: () => unknown, code: string, pattern: RegExp, node?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof OtfuseError, `not an OtfuseError: ${err}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    if (node) assert.equal(err.node, node);
    return true;
  });
}

test('a graph that is not a transformer is refused', () => {
  expectError(() => analyzeModel(mlpModel('mlp.onnx')), 'BAD_MODEL', /not a transformer.*Flatten 'flatten'/, 'flatten');
});

test('an op it cannot place is named with its node', () => {
  const name = '/vit/encoder/layer.1/intermediate/intermediate_act_fn/Erf';
  expectError(
    () => analyzeModel(replaceOp(s10, name, 'Hardmax')),
    'UNSUPPORTED',
    /Hardmax node '\/vit\/encoder\/layer\.1\/intermediate\/intermediate_act_fn\/Erf'/,
    name,
  );
  const sm = '/vit/encoder/layer.0/attention/attention/Softmax';
  expectError(() => analyzeModel(replaceOp(s10, sm, 'LogSoftmax')), 'UNSUPPORTED', /LogSoftmax/);
});

test('depth and head count come from the graph (surgery variants)', () => {
  assert.equal(analyzeModel(dropLastBlock(s10)).layers, 2);
  const six = analyzeModel(sixHeads(s10));
  assert.deepEqual([six.heads, six.headDim], [6, 8]);
});

test('unfolded Linear weights (MatMul of a Transposed [out, in] initializer) are placed, and fuse exactly', async () => {
  const unfolded = unfoldedLinears(s10);
  const plan = analyzeModel(unfolded);
  assert.equal(plan.blocks[0].attn.q.outIn, true);
  assert.deepEqual([plan.layers, plan.heads, plan.mlp], [3, 4, 192]);
  const want = await logitsOf(s10, calib, 16);
  assert.ok(maxAbsDiff(want, await logitsOf(unfolded, calib, 16)) < 1e-4, 'surgery keeps the function');
  // Fusing the folded original (anchor) with a permuted copy of it still reproduces it, and an unfolded anchor
  // gets its fused weights written back in its own [out, in] layout.
  const { model: permuted } = permutedCopy(s10, 3);
  const r = await fuseLoaded({ models: [unfolded, permuted], recipe: resolveRecipe({ solver: 'emd', samples: 16 }), calib });
  assert.ok(maxAbsDiff(want, await logitsOf(r.fused, calib, 16)) < 1e-4);
});

test('the decomposed-LayerNorm export fuses exactly with a permuted copy', async () => {
  const dec = decomposeLayerNorms(s10);
  const { model: permuted } = permutedCopy(s10, 4);
  const r = await fuseLoaded({ models: [dec, permuted], recipe: resolveRecipe({ solver: 'emd', qk: 'eq_t_map', samples: 16 }), calib });
  assert.ok(maxAbsDiff(await logitsOf(s10, calib, 16), await logitsOf(r.fused, calib, 16)) < 1e-4);
});
