// The recipe form: one field per property of the recipe JSON schema (so new options appear by themselves);
// Save writes a `*.otfuse.json`, "Save and fuse" (re-run with edits) fuses the run's models with it.
import type { FuseRecipe, RecipeField } from '../contracts/protocol';
import { h, button, basename } from './dom';
import { on, request } from './rpc';

const LABELS: Record<string, string> = {
  name: 'Run name',
  alignBy: 'Align by',
  solver: 'OT solver',
  reg: 'Entropic regularisation (Sinkhorn)',
  groundMetric: 'Ground metric',
  costNorm: 'Cost normalisation',
  residualPolicy: 'Residual policy',
  qk: 'Q/K mode',
  samples: 'Activation samples',
  tokenFilter: 'Tokens used',
  standardize: 'Standardise activations',
  headAware: 'Heads matched as units',
  weights: 'Model weights α (anchor first)',
  anchorWeight: 'Anchor weight α₀ (the other models share the rest)',
  preset: 'Preset (base settings)',
  mergeLayers: 'Merge layers K (partial fusion; all = full fusion, 0 = ensemble)',
  pareto: 'Measure the curve over every K (Pareto)',
};

function field(f: RecipeField, value: unknown, models?: string[]): HTMLElement {
  const id = `f-${f.key}`;
  let input: HTMLElement;
  if (f.enum)
    input = h(
      'select',
      { id, name: f.key },
      h('option', { value: '' }, `(default${f.default !== undefined ? `: ${f.default}` : ''})`),
      ...f.enum.map((v) => h('option', { value: v, selected: value === v }, v)),
    );
  else if (f.type === 'boolean')
    input = h(
      'select',
      { id, name: f.key },
      h('option', { value: '' }, `(default${f.default !== undefined ? `: ${f.default}` : ''})`),
      h('option', { value: 'true', selected: value === true }, 'yes'),
      h('option', { value: 'false', selected: value === false }, 'no'),
    );
  else if (f.type === 'array')
    input = h('input', {
      id,
      name: f.key,
      type: 'text',
      value: Array.isArray(value) ? value.join(', ') : '',
      placeholder: models ? `e.g. ${models.map(() => (1 / models.length).toFixed(2)).join(', ')} for ${models.map(basename).join(', ')}` : 'e.g. 0.5, 0.5',
    });
  else
    input = h('input', {
      id,
      name: f.key,
      type: f.type === 'string' ? 'text' : 'number',
      value: value === undefined ? '' : String(value),
      placeholder: f.default !== undefined ? String(f.default) : '',
      ...(f.minimum !== undefined ? { min: String(f.minimum) } : {}),
      ...(f.type === 'number' ? { step: 'any' } : {}),
    });
  return h(
    'div',
    { class: 'form-row' },
    h('label', { for: id, title: f.description ?? '' }, LABELS[f.key] ?? f.key, h('span', { class: 'muted small' }, ` ${f.key}`)),
    input,
    f.description ? h('div', { class: 'muted small' }, f.description) : null,
  );
}

function read(fields: RecipeField[]): { recipe: FuseRecipe; errors: string[] } {
  const recipe: Record<string, unknown> = {};
  const errors: string[] = [];
  for (const f of fields) {
    const el = document.getElementById(`f-${f.key}`) as HTMLInputElement | HTMLSelectElement | null;
    const raw = el?.value.trim() ?? '';
    if (!raw) continue;
    if (f.type === 'boolean') recipe[f.key] = raw === 'true';
    else if (f.type === 'number' || f.type === 'integer') {
      const n = Number(raw);
      if (!Number.isFinite(n) || (f.type === 'integer' && !Number.isInteger(n)) || (f.minimum !== undefined && n < f.minimum))
        errors.push(`${LABELS[f.key] ?? f.key}: '${raw}' is not a valid ${f.type}${f.minimum !== undefined ? ` ≥ ${f.minimum}` : ''}`);
      else recipe[f.key] = n;
    } else if (f.type === 'array') {
      const xs = raw
        .split(/[,\s]+/)
        .filter(Boolean)
        .map(Number);
      if (xs.some((x) => !Number.isFinite(x) || x < 0)) errors.push(`${LABELS[f.key] ?? f.key}: numbers ≥ 0, separated by commas`);
      else recipe[f.key] = xs;
    } else recipe[f.key] = raw;
  }
  return { recipe: recipe as FuseRecipe, errors };
}

function render(fields: RecipeField[], recipe: FuseRecipe, models?: string[]): void {
  const app = document.getElementById('app')!;
  const status = h('p', { id: 'form-status', role: 'status', class: 'muted' });
  const submit = async (fuse: boolean) => {
    const { recipe: r, errors } = read(fields);
    if (errors.length) {
      status.className = 'error';
      status.textContent = errors.join('; ');
      return;
    }
    const file = await request('saveRecipe', { recipe: r, suggestedName: r.name ?? 'recipe', fuse });
    status.className = 'muted';
    status.textContent = file ? `Saved ${basename(file)}${fuse ? ' — fusing…' : ''}` : 'Not saved.';
    if (file) document.body.dataset.saved = file;
  };
  const values = recipe as Record<string, unknown>;
  app.replaceChildren(
    h('h1', {}, models ? 'Re-run with edits' : 'New otfuse recipe'),
    models
      ? h('p', { class: 'muted small' }, `Models: ${models.map(basename).join(' + ')} (anchor first). Empty fields keep the defaults.`)
      : h('p', { class: 'muted small' }, 'Empty fields keep the defaults. The file can be chosen in Fuse Models → preset, or with otfuse fuse --recipe.'),
    h(
      'form',
      {
        id: 'recipe-form',
        onsubmit: (e: Event) => {
          e.preventDefault();
          void submit(!!models);
        },
      },
      ...fields.map((f) => field(f, values[f.key], models)),
      h(
        'div',
        { class: 'actions' },
        button(models ? 'Save and fuse' : 'Save recipe', () => void submit(!!models), 'primary', 'btn-save-recipe'),
        models ? button('Save only', () => void submit(false), 'secondary', 'btn-save-only') : null,
      ),
    ),
    status,
  );
}

export function startRecipe(): void {
  on('recipeForm', (m) => render(m.fields, m.recipe, m.models));
  void request('ready', {});
}
