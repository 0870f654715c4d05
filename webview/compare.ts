// Runs side by side: recipes diffed, accuracy tables merged (with what each was measured on), and the same
// layer's maps next to each other.
import type { DataArg, MapPayload, ModelMetrics, RunView } from '../contracts/protocol';
import { h, section, pct, basename } from './dom';
import { on, request } from './rpc';
import { drawColourBar, drawMap, formatValue } from './heatmap';
import { sharedScale } from './mapMath';
import { defaultLayer } from '../contracts/layers';

const dataName = (d?: DataArg) => {
  const p = typeof d === 'string' ? d : d?.path;
  return typeof p === 'string' ? basename(p) : '—';
};
const show = (v: unknown) => (v === undefined ? '—' : Array.isArray(v) ? v.join(', ') : String(v));

function render(runs: RunView[]): void {
  const app = document.getElementById('app')!;
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.record.recipe ?? {})))].sort();
  const recipeRows = keys.map((k) => {
    const vals = runs.map((r) => (r.record.recipe as Record<string, unknown>)[k]);
    const differs = new Set(vals.map((v) => JSON.stringify(v))).size > 1;
    return h(
      'tr',
      { class: differs ? 'diff' : '', 'data-key': k },
      h('th', { scope: 'row' }, k, differs ? h('span', { class: 'diff-mark', title: 'differs' }, ' ≠') : null),
      ...vals.map((v) => h('td', {}, show(v))),
    );
  });
  // Rows are matched across runs by what they measured (role, start, parent index, seeded), not by label.
  // Parents are told apart by their file (two runs of different parents do not share a parent row).
  const keyOf = (m: ModelMetrics) => [m.role, m.start ?? '', m.model ?? '', m.seeds ? 'seeds' : '', m.file ? basename(m.file) : ''].join('|');
  const rowLabel = new Map<string, string>();
  for (const r of runs) for (const m of r.record.metrics) if (!rowLabel.has(keyOf(m))) rowLabel.set(keyOf(m), m.label);
  const labels = [...rowLabel.keys()];
  const evalOn = runs.map((r) => `${dataName(r.record.evalData ?? r.record.data)}${r.record.evalIsCalibration ? ' (calibration!)' : ''}`);
  const sameData = new Set(evalOn).size === 1;
  const accRows = labels.map((key) =>
    h(
      'tr',
      { 'data-label': rowLabel.get(key)!, 'data-role': key.split('|')[0] },
      h('th', { scope: 'row' }, rowLabel.get(key)!),
      ...runs.map((r) => {
        const m = r.record.metrics.find((x) => keyOf(x) === key);
        return h('td', { class: 'num', 'data-accuracy': m?.accuracy ?? '' }, pct(m?.accuracy));
      }),
    ),
  );
  const head = () => h('thead', {}, h('tr', {}, h('th', {}, ''), ...runs.map((r) => h('th', { scope: 'col', title: r.runDir }, r.record.name))));
  const names = [...new Set(runs.flatMap((r) => r.record.layers.map((l) => l.name)))];
  const first = defaultLayer(runs[0].record.layers)?.name ?? names[0];
  const picker = h(
    'select',
    { id: 'compare-layer', 'aria-label': 'layer to compare' },
    ...names.map((n) => h('option', { value: n, selected: n === first }, n)),
  ) as HTMLSelectElement;
  const maps = h('div', { class: 'compare-maps', id: 'compare-maps' });
  picker.addEventListener('change', () => void drawLayer(runs, picker.value, maps));
  app.replaceChildren(
    h('h1', {}, `Compare ${runs.length} runs`),
    section('Recipes', 'compare-recipes', h('table', { class: 'grid', id: 'compare-recipe' }, head(), h('tbody', {}, ...recipeRows))),
    section(
      'Accuracy',
      'compare-accuracy',
      h(
        'table',
        { class: 'grid', id: 'compare-acc' },
        h(
          'caption',
          { class: sameData ? '' : 'warning' },
          sameData ? `Measured on ${evalOn[0]}` : `Measured on different data (${evalOn.join(' vs ')}): rows are not directly comparable`,
        ),
        head(),
        h('tbody', {}, ...accRows),
      ),
    ),
    section('Same layer', 'compare-layers', picker, maps),
  );
  void drawLayer(runs, first, maps);
}

async function drawLayer(runs: RunView[], name: string, target: HTMLElement): Promise<void> {
  // Every map first, then one colour scale over all of them: the same colour means the same mass in each run.
  const loaded = await Promise.all(
    runs.map(async (r) => {
      const layer = r.record.layers.find((l) => l.name === name);
      const map = layer ? await request('getMap', { runDir: r.runDir, tensor: layer.tensor, maxSide: 256 }) : null;
      return { r, layer, map };
    }),
  );
  const maps = loaded.map((x) => x.map).filter((m): m is MapPayload => !!m);
  const scale = maps.length ? sharedScale(maps) : undefined;
  const side = Math.max(120, Math.min(360, Math.floor((document.getElementById('app')!.clientWidth - 40) / runs.length) - 70));
  const cells = loaded.map(({ r, layer, map }) => {
    const cell = h(
      'figure',
      { class: 'compare-cell', 'data-run': r.runDir },
      h('figcaption', {}, `${r.record.name}${layer ? ` · ${layer.rows}×${layer.cols} neurons` : ''}`),
    );
    if (!layer || !map || !scale) {
      cell.append(h('p', { class: 'muted' }, layer ? 'map not readable' : 'no such layer in this run'));
      return cell;
    }
    const c = h('canvas', { class: 'compare-map', role: 'img', 'aria-label': `${name} in ${r.record.name}` }) as HTMLCanvasElement;
    const bar = h('canvas', { class: 'compare-bar', role: 'img', 'aria-label': 'colour scale (shared by every map here)' }) as HTMLCanvasElement;
    drawMap(c, map, side, scale);
    drawColourBar(bar, scale.min, scale.max, parseFloat(c.style.height), 58, scale);
    c.dataset.drawn = '1';
    c.dataset.scaleMin = String(scale.min);
    c.dataset.scaleMax = String(scale.max);
    cell.append(h('div', { class: 'heatmap-wrap' }, c, bar));
    return cell;
  });
  const note = scale
    ? h(
        'p',
        { class: 'muted small', id: 'compare-scale' },
        `One colour scale for every map here: n·P from ${formatValue(scale.min)} to ${formatValue(scale.max)} (each map's own range: ${loaded
          .filter((x) => x.map)
          .map((x) => `${x.r.record.name} ${formatValue(x.map!.min)}–${formatValue(x.map!.max)}`)
          .join(', ')})`,
      )
    : null;
  target.replaceChildren(...cells, ...(note ? [note] : []));
  document.body.dataset.compared = name;
}

export function startCompare(): void {
  on('compare', (m) => render(m.runs));
  void request('ready', {});
}
