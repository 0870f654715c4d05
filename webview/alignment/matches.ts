// "Which neurons matched": the detail map's view options (sort by match, log colour scale), the hover read-out in
// original neuron indices, and each neuron's top-k matches with their share of its mass.
import type { MapPayload } from '../../contracts/protocol';
import { h } from '../dom';
import { colourScale, describeCell, smallestPositive, type ColourScale } from '../mapMath';
import type { cellAt } from '../mapMath';
import { S, save } from './state';

/** Rows listed in the top-k table (the full list is in the CSV export). */
const TOP_ROWS = 256;

/** The scale the detail map is drawn with: linear min–max, or log when the user asked for it. */
export function detailScale(map: MapPayload): ColourScale {
  return colourScale(map.min, map.max, !!S.persisted.logScale, S.persisted.logScale ? smallestPositive(map.data) : undefined);
}

/** The two check boxes above the detail map; `redraw` asks for (or redraws) the map. */
export function viewOptions(redraw: (refetch: boolean) => void): HTMLElement {
  // A checkbox made of a span with role="checkbox" (keyboard: Space/Enter): no <input> in the view, whose style
  // attribute the webview host touches under the strict CSP (see the UI test's CSP check).
  const box = (id: string, label: string, title: string, checked: boolean, onchange: (on: boolean) => void) => {
    const el = h(
      'span',
      { class: 'option toggle', role: 'checkbox', tabindex: '0', id, title, 'aria-checked': String(checked) },
      h('span', { class: 'box', 'aria-hidden': 'true' }),
      label,
    );
    const toggle = () => {
      const on = el.getAttribute('aria-checked') !== 'true';
      el.setAttribute('aria-checked', String(on));
      onchange(on);
    };
    el.addEventListener('click', toggle);
    el.addEventListener('keydown', (e) => {
      if (e.key === ' ' || e.key === 'Enter') {
        e.preventDefault();
        toggle();
      }
    });
    return el;
  };
  return h(
    'div',
    { class: 'map-options small', id: 'map-options' },
    box(
      'opt-sort',
      'Sort by match',
      "Order the rows (the other model's neurons) by the anchor neuron they match best: a permutation shows as the diagonal",
      !!S.persisted.sortByMatch,
      (on) => {
        S.persisted.sortByMatch = on;
        save();
        redraw(true);
      },
    ),
    box(
      'opt-log',
      'Log colour scale',
      'Colour by the logarithm of the mass (soft maps: the few strong matches and the faint rest both stay visible)',
      !!S.persisted.logScale,
      (on) => {
        S.persisted.logScale = on;
        save();
        redraw(false);
      },
    ),
  );
}

/** Original row index shown at position `k` of the drawn map. */
const original = (map: MapPayload, k: number) => map.rowOrder?.[k] ?? k;

/** The hover read-out in original neuron indices, with the row's best matches when the cell is a single row. */
export function describeHover(map: MapPayload, c: ReturnType<typeof cellAt>): string {
  if (!map.rowOrder) return describeCell(c) + topText(map, c.i0, c.i1);
  if (c.i0 !== c.i1) return `sorted rows ${c.i0}–${c.i1}, ` + describeCell(c).replace(/^i [^,]+, /, '');
  const i = original(map, c.i0);
  return `i ${i} (sorted ${c.i0}), ` + describeCell(c).replace(/^i [^,]+, /, '') + topText(map, i, i);
}

function topText(map: MapPayload, i0: number, i1: number): string {
  if (!map.top || i0 !== i1) return '';
  const best = matchesOf(map, i0);
  return best.length ? ` · best: ${best.map((m) => `j ${m.j} (${(100 * m.mass).toFixed(1)} %)`).join(', ')}` : '';
}

function matchesOf(map: MapPayload, i: number): { j: number; mass: number }[] {
  const t = map.top!;
  const out = [];
  for (let p = 0; p < t.k; p++) {
    const j = t.cols[i * t.k + p];
    if (j >= 0) out.push({ j, mass: t.mass[i * t.k + p] });
  }
  return out;
}

/** The top-k table: each neuron (in the drawn order) with its k best anchor neurons and their mass. */
export function topTable(map: MapPayload): HTMLElement | null {
  const t = map.top;
  if (!t) return null;
  const rows = map.rows;
  let hard = 0;
  for (let i = 0; i < rows; i++) if (t.mass[i * t.k] >= 0.9) hard++;
  const shown = Math.min(rows, TOP_ROWS);
  const body = [];
  for (let k = 0; k < shown; k++) {
    const i = original(map, k);
    const best = matchesOf(map, i);
    body.push(
      h(
        'tr',
        { 'data-row': String(i) },
        h('th', { scope: 'row', class: 'num' }, String(i)),
        ...Array.from({ length: t.k }, (_, p) => h('td', { class: 'num', 'data-col': String(best[p]?.j ?? '') }, best[p] ? `${best[p].j}` : '—')),
        h('td', { class: 'num' }, best.length ? `${(100 * best.reduce((s, m) => s + m.mass, 0)).toFixed(1)} %` : '—'),
      ),
    );
  }
  return h(
    'details',
    { id: 'top-matches', open: S.persisted.topOpen ? true : undefined },
    h('summary', {}, `Top-${t.k} matches per neuron · ${hard} of ${rows} neurons put ≥ 90 % of their mass on one anchor neuron`),
    h(
      'table',
      { class: 'grid', id: 'top-table' },
      h(
        'caption',
        { class: 'muted small' },
        `Row i: a neuron of the other model; j: its best anchor neurons; mass: their share of the row${shown < rows ? ` (first ${shown} of ${rows} rows)` : ''}`,
      ),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col', class: 'num' }, 'i'),
          ...Array.from({ length: t.k }, (_, p) => h('th', { scope: 'col', class: 'num' }, `j #${p + 1}`)),
          h('th', { scope: 'col', class: 'num' }, `mass top-${t.k}`),
        ),
      ),
      h('tbody', {}, ...body),
    ),
  );
}

/** The detail map's scale line: size, what is shown, the colour scale. */
export function scaleText(map: MapPayload, s: ColourScale, fmt: (v: number) => string): string {
  const shown = map.outRows < map.rows || map.outCols < map.cols ? ` shown as ${map.outRows}×${map.outCols} block means` : '';
  const order = map.rowOrder ? ' · rows sorted by match' : '';
  const scale = s.log
    ? `log colour scale from ${fmt(s.lo)} to ${fmt(s.max)}`
    : `row-normalised mass n·P from ${fmt(map.min)} to ${fmt(map.max)} (rows sum to 1)`;
  return `${map.rows}×${map.cols}${shown}${order} · colour: ${scale}`;
}
