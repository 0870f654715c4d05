// Issue 26 (options from one place): the presets Fuse Models offers come from the engine's preset registry
// (worker/fusion/presets.ts), and its "Recommended" choice is the engine's auto-tune, by the CLI's rule.
import test from 'node:test';
import assert from 'node:assert/strict';
import { PRESETS, autotunes, fuseChoices } from '../../worker/fusion/presets';
import { RECIPE_FIELDS, resolveRecipe } from '../../worker/fusion/recipe';
import * as client from '../../worker/client';

test('Fuse Models offers the auto-tune first, then the presets with an `offer`, each a recipe the engine resolves', () => {
  const choices = fuseChoices();
  assert.deepEqual(
    choices.map((c) => c.id),
    ['recommended', 'exact', 'weight-based'],
  );
  const [recommended, ...presets] = choices;
  assert.deepEqual(recommended.recipe, {});
  assert.equal(autotunes(recommended.recipe), true, 'Recommended is auto-tuned');
  for (const c of presets) {
    assert.equal(autotunes(c.recipe), false, `${c.id} is a fixed preset`);
    const name = c.recipe.preset!;
    const resolved = resolveRecipe(c.recipe) as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(PRESETS[name].values)) assert.equal(resolved[k], v, `${c.id}: ${k}`);
  }
  // The schema's preset names are the registry's.
  const preset = RECIPE_FIELDS.preset;
  assert.ok(preset.type === 'enum');
  assert.deepEqual([...preset.values], Object.keys(PRESETS));
  // The extension takes the registry through worker/client.
  assert.equal(client.fuseChoices, fuseChoices);
  assert.equal(client.autotunes, autotunes);
});

test('the auto-tune rule (CLI and editor): a recipe with no field besides its name is auto-tuned', () => {
  assert.equal(autotunes(undefined), true);
  assert.equal(autotunes({ name: 'x', $schema: 'recipe.schema.json' } as never), true);
  assert.equal(autotunes({ mergeLayers: 2, pareto: true }), true, 'the fused model’s shape keeps the auto-tune');
  assert.equal(autotunes({ solver: 'emd' }), false);
  assert.equal(autotunes({ preset: 'default' }), false);
});
