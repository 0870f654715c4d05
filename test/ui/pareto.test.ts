// The run panel's partial-fusion curve (webview/paretoData.ts), without a browser: one point per recorded K in K
// order, the ensemble and full fusion named, the chosen K marked, each parent at its own size (the anchor's for older records), perplexity
// (e^loss, lower is better) for a causal LM, and the Pareto front. The numbers are those of a real run
// (`otfuse fuse examples/vit48_s10.onnx examples/vit48_s11.onnx --merge-layers 2 --pareto --no-autotune
// --eval-data examples/data/fmnist-test-2k.json --eval-limit 500`); the browser check is scripts/e2e/ui-pareto.mjs.
import test from 'node:test';
import assert from 'node:assert/strict';
import type { RunRecord } from '../../worker/types';
import { formatValue, paretoData, paretoFront, pointDescription, pointLabel } from '../../webview/paretoData';

const record = (over: Partial<RunRecord> = {}): RunRecord =>
  ({
    id: 'x',
    name: 'pareto',
    status: 'done',
    createdAt: '2026-12-06T23:57:52.000Z',
    recipe: { mergeLayers: 2, pareto: true },
    models: ['/w/vit48_s10.onnx', '/w/vit48_s11.onnx'],
    anchor: '/w/vit48_s10.onnx',
    fusedModel: 'fused.onnx',
    versions: {},
    timings: {},
    metrics: [
      { label: 'vit48_s10.onnx (anchor)', role: 'anchor', accuracy: 0.864, loss: 0.41 },
      { label: 'vit48_s11.onnx', role: 'parent', accuracy: 0.856, loss: 0.43 },
      { label: 'vanilla', role: 'vanilla', accuracy: 0.142 },
      { label: 'ot', role: 'fused', accuracy: 0.666 },
    ],
    layers: [],
    // Recorded out of order on purpose: the chart sorts by K.
    partial: {
      mergeLayers: 2,
      layers: 3,
      parameters: 119828,
      parentParameters: 88666,
      points: [
        { mergeLayers: 3, parameters: 88666, accuracy: 0.844, loss: 0.45155113354272053 },
        { mergeLayers: 0, parameters: 177332, accuracy: 0.87, loss: 0.36818649386485036 },
        { mergeLayers: 2, parameters: 119828, accuracy: 0.666, loss: 0.9677348069378542 },
        { mergeLayers: 1, parameters: 148100, accuracy: 0.656, loss: 0.9092556752174196 },
      ],
    },
    ...over,
  }) as RunRecord;

test('one point per recorded K, in K order, with its size, ratio, accuracy and kind; the chosen K marked', () => {
  const d = paretoData(record())!;
  assert.equal(d.metric, 'accuracy');
  assert.equal(d.lowerIsBetter, false);
  assert.deepEqual(
    d.points.map((q) => [q.k, q.kind, q.parameters, q.value, q.chosen]),
    [
      [0, 'ensemble', 177332, 0.87, false],
      [1, 'partial', 148100, 0.656, false],
      [2, 'partial', 119828, 0.666, true],
      [3, 'full', 88666, 0.844, false],
    ],
  );
  assert.equal(d.points[2].ratio.toFixed(4), (119828 / 88666).toFixed(4));
  assert.equal(d.points[0].ratio, 2);
  assert.deepEqual(
    d.points.map((q) => q.label),
    ['K = 0 · ensemble', 'K = 1', 'K = 2', 'K = 3 · full fusion'],
  );
  // A record without modelParameters: the parents at the anchor's size, with their own accuracies (not the fused rows).
  assert.deepEqual(
    d.parents.map((q) => [q.label, q.parameters, q.value, q.kind]),
    [
      ['vit48_s10.onnx (anchor)', 88666, 0.864, 'parent'],
      ['vit48_s11.onnx', 88666, 0.856, 'parent'],
    ],
  );
  assert.equal(formatValue(d, d.points[2].value), '66.60%');
});

test('each parent at its own parameter count (run.json partial.modelParameters): a wider parent sits right of the anchor', () => {
  // vit48_s10 (88,666 parameters) and the 72-wide vit72_s12 (195,202): the same recorded curve, parents of two sizes.
  const base = record();
  const d = paretoData(
    record({
      metrics: [
        { label: 'vit48_s10.onnx (anchor)', role: 'anchor', model: 0, accuracy: 0.864, loss: 0.41 },
        { label: 'vit72_s12.onnx', role: 'parent', model: 1, accuracy: 0.871, loss: 0.4 },
      ],
      partial: {
        ...base.partial!,
        modelParameters: [88666, 195202],
        points: base.partial!.points!.map((q) => ({ ...q, ...(q.mergeLayers === 2 ? { trunk: 'fitted' as const } : {}) })),
      },
    }),
  )!;
  assert.deepEqual(
    d.parents.map((q) => [q.label, q.parameters, q.ratio.toFixed(4)]),
    [
      ['vit48_s10.onnx (anchor)', 88666, '1.0000'],
      ['vit72_s12.onnx', 195202, (195202 / 88666).toFixed(4)],
    ],
  );
  // The curve keeps its sizes; the chosen point's trunk is carried for the table's tooltip.
  assert.deepEqual(
    d.points.map((q) => q.trunk),
    [undefined, undefined, 'fitted', undefined],
  );
  // The 72-wide parent (195,202, 87.1 %) is larger than the ensemble (177,332, 87.0 %) but better: on the front.
  assert.deepEqual([...paretoFront(d)].map((q) => q.label).sort(), ['K = 0 · ensemble', 'vit48_s10.onnx (anchor)', 'vit72_s12.onnx']);
});

test('the Pareto front: the smallest model and every larger one that is strictly better', () => {
  const d = paretoData(record())!;
  const front = [...paretoFront(d)].map((q) => q.label).sort();
  // Anchor (88,666, 86.4 %) dominates full fusion (same size, 84.4 %), the other parent and K = 1, 2; the ensemble
  // (177,332, 87.0 %) is larger but better.
  assert.deepEqual(front, ['K = 0 · ensemble', 'vit48_s10.onnx (anchor)']);
});

test('a causal LM: perplexity = e^loss, lower is better, and the front follows it', () => {
  const r = record({
    metrics: [
      { label: 'a (anchor)', role: 'anchor', accuracy: 0.3, loss: 2, perplexity: Math.exp(2) },
      { label: 'b', role: 'parent', accuracy: 0.31, loss: 2.1, perplexity: Math.exp(2.1) },
    ],
  });
  const d = paretoData(r)!;
  assert.equal(d.metric, 'perplexity');
  assert.equal(d.lowerIsBetter, true);
  assert.ok(Math.abs(d.points[0].value! - Math.exp(0.36818649386485036)) < 1e-12);
  assert.equal(formatValue(d, d.points[0].value), Math.exp(0.36818649386485036).toFixed(2));
  // Lowest perplexity: the ensemble (e^0.368); smallest: full fusion (e^0.452) beats both parents (e^2, e^2.1).
  assert.deepEqual([...paretoFront(d)].map((q) => q.k).sort(), [0, 3]);
});

test('no curve recorded (no --pareto, or no partial fusion): no chart data; an unevaluated curve has no values', () => {
  assert.equal(paretoData(record({ partial: undefined })), undefined);
  assert.equal(paretoData(record({ partial: { mergeLayers: 2, layers: 3, parameters: 119828, parentParameters: 88666 } })), undefined);
  const d = paretoData(
    record({
      metrics: [],
      partial: {
        mergeLayers: 3,
        layers: 3,
        parameters: 88666,
        parentParameters: 88666,
        points: [
          { mergeLayers: 0, parameters: 177332 },
          { mergeLayers: 3, parameters: 88666 },
        ],
      },
    }),
  )!;
  assert.deepEqual(
    d.points.map((q) => [q.k, q.value, q.chosen]),
    [
      [0, undefined, false],
      [3, undefined, true],
    ],
  );
  assert.equal(paretoFront(d).size, 0);
  assert.equal(pointLabel(0, 12), 'K = 0 · ensemble');
  assert.equal(pointDescription(5, 12), 'embeddings and 5 of 12 blocks shared; each parent keeps blocks 6–12 and its head as a branch');
});
