// The Alignment view names what a map's rows and columns are: a decoder run's attention maps are heads×heads,
// its MLP maps neurons (issue 29 item 6); an unknown kind falls back to neurons.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mapAxes, mapCaption, mapUnits } from '../../webview/alignment/units';

test('decoder map kinds: head maps and neuron maps are named as such', () => {
  assert.equal(
    mapCaption({ name: 'layer0.attn.heads', kind: 'heads', rows: 4, cols: 4 }),
    'layer0.attn.heads — attention: whole-head map (heads × heads) · 4×4',
  );
  assert.equal(mapAxes({ kind: 'heads', rows: 12, cols: 12 }), 'N: 12 attention heads of the other model × 12 of the anchor');
  assert.equal(mapAxes({ kind: 'kv-heads', rows: 2, cols: 2 }), 'N: 2 key-value heads of the other model × 2 of the anchor');
  assert.match(mapCaption({ name: 'layer1.mlp', kind: 'swiglu', rows: 128, cols: 128 }), /^layer1\.mlp — MLP: neuron map \(gate and up share it\) · 128×128$/);
  assert.equal(mapUnits('mlp').unit, 'MLP neurons');
  assert.equal(mapAxes({ kind: 'fc1', rows: 3, cols: 5 }), 'N: 3 neurons of the other model × 5 of the anchor');
});
