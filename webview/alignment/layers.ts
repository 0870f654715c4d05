// Aligned layers: the per-layer overview across depth, the selected map (heatmap with colour bar and scale, hover
// read-out kept above it, zoom into an editor tab, exports) with labelled diagnostics, and every layer's thumbnail.
import type { LayerMapInfo, MapPayload, RunRecord } from '../../contracts/protocol';
import { h, button, section, canvasPng } from '../dom';
import { request } from '../rpc';
import { cellAt, composeHeatmapImage, drawColourBar, drawMap, formatValue, prepareColours } from '../heatmap';
import { describeThumbnailCell } from '../mapMath';
import { detailScale, describeHover, scaleText, topTable, viewOptions } from './matches';
import { diagnosticLabel } from '../labels';
import { overviewChart } from '../chart';
import { composeChart, provenanceLine } from '../exportImage';
import type uPlot from 'uplot';
import { S, save, width } from './state';
import { mapAxes, mapCaption } from './units';
import * as perf from '../perf';
import { cachedMap, expectPushed, fetchMap, fetchRunAhead, pushedMap, type MapAsk } from './mapCache';
import { defaultLayer, DETAIL_SIDE, DETAIL_TOP_K } from '../../contracts/layers';

const HOVER_HINT = 'Hover the map: row i (other model), column j (anchor), value.';

/** The run's selected layer (its default when none, or one the run lacks, was selected). */
function selectedOf(r: RunRecord): string | undefined {
  if (!r.layers.length) return undefined;
  if (!S.persisted.selected || !r.layers.some((l) => l.tensor === S.persisted.selected)) {
    S.persisted.selected = defaultLayer(r.layers).tensor;
    save();
  }
  return S.persisted.selected;
}

/** A run arrived: its selected layer's map is asked for at once, while the view builds the run (select() then
 * shares the request), unless the host sends it unasked (`first`: the layer whose map follows the run). */
export function askFirst(r: RunRecord, runDir: string, first?: string): void {
  const tensor = selectedOf(r);
  const ask = tensor ? askOf(runDir, tensor) : undefined;
  if (!ask || cachedMap(ask)) return;
  perf.detailAsked();
  if (first === tensor && !ask.sort) expectPushed(ask);
  else void fetchMap(ask);
}

/** The detail map the host sent with a run (its 'firstMap' event). */
export function firstMapArrived(runDir: string, tensor: string, map: MapPayload | null): void {
  pushedMap({ ...askOf(runDir, tensor), sort: false }, map);
}

const askOf = (runDir: string, tensor: string): MapAsk => ({ runDir, tensor, maxSide: DETAIL_SIDE, sort: !!S.persisted.sortByMatch, top: DETAIL_TOP_K });

export function layersSection(r: RunRecord, runDir: string): HTMLElement {
  const layers = r.layers;
  if (!layers.length) return section('Aligned layers', 'layers', h('p', { class: 'muted' }, 'No transport maps in this run.'));
  selectedOf(r);
  const overview = h('div', { id: 'overview', class: 'chart' });
  const solved = layers.filter((l) => l.kind !== 'residual');
  requestAnimationFrame(() => {
    const plot = overviewChart(overview, solved, Math.max(160, width() - 24), (i) => select(solved[i].tensor, false, true));
    if (plot) {
      overview.dataset.drawn = '1';
      (overview as HTMLElement & { plot?: uPlot }).plot = plot;
    }
  });
  const overviewPng = button(
    'PNG',
    () => {
      const plot = (overview as HTMLElement & { plot?: uPlot }).plot;
      const c = plot && composeChart(plot, `${r.name} · the ${solved.length} maps solved by OT, input to output`, provenanceLine(r));
      if (c) void canvasPng(c).then((bytes) => request('saveFile', { suggestedName: `${r.name}-overview.png`, bytes, filter: 'png' }));
    },
    'secondary',
    'btn-export-overview',
    'Export the overview chart as PNG',
  );
  const list = h(
    'div',
    { class: 'thumbs', role: 'listbox', 'aria-label': 'aligned layers', id: 'layer-list' },
    ...layers.map((l, k) =>
      h(
        'div',
        {
          class: 'thumb-card',
          role: 'option',
          tabindex: l.tensor === S.persisted.selected ? '0' : '-1',
          'aria-selected': String(l.tensor === S.persisted.selected),
          'data-tensor': l.tensor,
          title: `${l.name} (${l.kind}) ${l.rows}×${l.cols}${r.models.length > 2 ? ` · model ${l.model}` : ''}`,
          onclick: (e: MouseEvent) => select(l.tensor, false, false, true, e.timeStamp),
          onkeydown: (e: KeyboardEvent) => {
            if (e.key === 'Enter' || e.key === ' ') {
              e.preventDefault();
              select(l.tensor, false, true, false, e.timeStamp);
            }
            const next = e.key === 'ArrowRight' || e.key === 'ArrowDown' ? k + 1 : e.key === 'ArrowLeft' || e.key === 'ArrowUp' ? k - 1 : -1;
            if (next >= 0 && next < layers.length) {
              e.preventDefault();
              select(layers[next].tensor, true, true, false, e.timeStamp);
            }
          },
        },
        h('canvas', { class: 'thumb', 'data-tensor': l.tensor, role: 'img', 'aria-label': `transport map of ${l.name}` }),
        h('div', { class: 'thumb-name' }, l.name),
        h('div', { class: 'muted small' }, `${l.kind} · ${l.rows}×${l.cols}${r.models.length > 2 ? ` · m${l.model}` : ''}`),
      ),
    ),
  );
  const act = (action: 'openLarge' | 'exportMapCsv' | 'exportMapNpy') => () => void request('action', { action, runDir, tensor: S.persisted.selected });
  const residual = layers.length - solved.length;
  return section(
    // Counts that add up: maps in this run = solved by OT + residual (the model view counts aligned groups,
    // which include groups that pass a neighbour's map through without a map of their own).
    `Aligned layers (${layers.length} maps: ${solved.length} solved by OT${residual ? `, ${residual} residual` : ''})`,
    'layers',
    solved.length > 1
      ? h(
          'div',
          {},
          h('h3', {}, 'Across depth'),
          h(
            'div',
            { class: 'muted small' },
            `The ${solved.length} maps solved by OT, input to output (points 0–${solved.length - 1}): how close each is to a permutation (hard alignment) and its OT cost. Click a point to select the layer.`,
          ),
          overview,
          h('div', { class: 'actions small-actions' }, overviewPng),
        )
      : null,
    h(
      'div',
      { id: 'detail' },
      h('h3', { id: 'detail-name' }),
      viewOptions((refetch) => (refetch && S.persisted.selected ? select(S.persisted.selected, false, false) : drawDetail())),
      h('div', { id: 'hover', class: 'muted small', 'aria-live': 'polite' }, HOVER_HINT),
      h(
        'div',
        { class: 'heatmap-wrap' },
        h('canvas', { id: 'heatmap', tabindex: '0', role: 'img' }),
        h('canvas', { id: 'colourbar', role: 'img', 'aria-label': 'colour scale' }),
      ),
      h('div', { id: 'scale', class: 'muted small' }),
      h(
        'div',
        { class: 'actions small-actions' },
        button('Open large', act('openLarge'), 'secondary', 'btn-open-large', 'Open this map in an editor tab (zoom)'),
        button('PNG', () => void exportPng(r.name), 'secondary', 'btn-export-png', 'Export the heatmap with its colour bar as PNG'),
        button('CSV', act('exportMapCsv'), 'secondary', 'btn-export-csv', 'Export the full map as CSV'),
        button('NPY', act('exportMapNpy'), 'secondary', 'btn-export-npy', 'Export the full map as a NumPy .npy file'),
      ),
      h('div', { id: 'top-slot' }),
      h('div', { id: 'diagnostics-slot' }),
    ),
    h('h3', {}, 'All layers'),
    list,
  );
}

async function exportPng(runName: string): Promise<void> {
  const map = currentMap();
  const l = S.run?.record.layers.find((x) => x.tensor === S.persisted.selected);
  if (!map || !l) return;
  const scale = detailScale(map);
  const bytes = await canvasPng(
    composeHeatmapImage(
      map,
      `${runName} · ${l.name} (${l.kind}) ${l.rows}×${l.cols}`,
      512,
      scale,
      scaleText(map, scale, formatValue),
      S.run ? provenanceLine(S.run.record) : '',
    ),
  );
  await request('saveFile', { suggestedName: `${runName}-${l.name}.png`, bytes, filter: 'png' });
}

function diagnostics(l: LayerMapInfo): HTMLElement {
  const entries = Object.entries(l.diagnostics ?? {}).filter(([, v]) => typeof v === 'number');
  if (!entries.length)
    return h(
      'p',
      { class: 'muted small', id: 'diagnostics' },
      l.kind === 'residual'
        ? 'Residual maps are combined from the layers around them, not solved by OT: no diagnostics.'
        : 'No diagnostics recorded for this map.',
    );
  return h(
    'table',
    { id: 'diagnostics', class: 'grid' },
    h('caption', {}, `Diagnostics of ${l.name} · N = ${l.rows} × ${l.cols} neurons${samplesText()}`),
    h(
      'tbody',
      {},
      ...entries.map(([k, v]) => {
        const d = diagnosticLabel(k);
        return h(
          'tr',
          { title: d.help, 'data-key': k },
          h('th', { scope: 'row' }, h('span', { class: 'help', 'aria-description': d.help }, d.label)),
          h('td', { class: 'num' }, d.format(v, l.cols, l.rows)),
        );
      }),
    ),
  );
}

let detailRequests = 0;

/** Each map's top-k table, built once (a switch back reuses it). */
const topTables = new WeakMap<MapPayload, HTMLElement | null>();
function topTableOf(map: MapPayload): HTMLElement | null {
  let table = topTables.get(map);
  if (table === undefined) {
    table = topTable(map);
    const details = table as HTMLDetailsElement | null;
    details?.addEventListener('toggle', () => {
      if (S.persisted.topOpen === details.open) return;
      S.persisted.topOpen = details.open;
      save();
    });
    topTables.set(map, table);
  }
  if (table) (table as HTMLDetailsElement).open = !!S.persisted.topOpen;
  return table;
}

/** ", 200 calibration samples" (the samples the maps were computed from), when run.json says. */
function samplesText(): string {
  const r = S.run?.record;
  const n = (r?.recipe as { samples?: number } | undefined)?.samples;
  return typeof n === 'number' ? `, ${n} calibration samples` : '';
}

/** Selects a layer: updates the cards, the detail and the diagnostics in place, and asks for the full map.
 * `timeStamp`: the user's event that asked for it (the switch is timed from there: webview/perf.ts). */
export function select(tensor: string, focus = false, scroll = true, showMap = false, timeStamp?: number): void {
  const run = S.run;
  if (!run) return;
  if (timeStamp !== undefined) perf.switchStarted(tensor, timeStamp);
  S.persisted.selected = tensor;
  save();
  const runDir = run.runDir;
  const ask = askOf(runDir, tensor);
  const cached = cachedMap(ask);
  S.detail = cached ?? null; // else the thumbnail shows until the detailed map arrives
  for (const card of document.querySelectorAll<HTMLElement>('.thumb-card')) {
    const on = card.dataset.tensor === tensor;
    card.setAttribute('aria-selected', String(on));
    card.tabIndex = on ? 0 : -1;
    if (on && focus) card.focus();
    if (on && scroll) card.scrollIntoView({ block: 'nearest' });
  }
  const l = run.record.layers.find((x) => x.tensor === tensor);
  if (!l) return;
  const name = document.getElementById('detail-name');
  if (name) name.textContent = mapCaption(l);
  name?.setAttribute('title', `${mapAxes(l)}${samplesText()}`);
  document.getElementById('diagnostics-slot')?.replaceChildren(diagnostics(l));
  const slot = document.getElementById('top-slot');
  slot?.replaceChildren();
  if (slot) slot.dataset.key = '';
  drawDetail(!!cached);
  // Picked from the list (below the map): bring the map into view.
  if (showMap) document.getElementById('detail-name')?.scrollIntoView({ block: 'start' });
  const asked = ++detailRequests;
  if (cached) {
    prefetchNeighbours(ask);
    return;
  }
  perf.detailAsked();
  void fetchMap(ask).then((map) => {
    perf.replyArrived(tensor);
    // Only the latest request's map (a slower earlier answer, e.g. unsorted, must not replace a newer one).
    if (map && asked === detailRequests && S.run?.runDir === runDir && S.persisted.selected === tensor) {
      S.detail = map;
      drawDetail();
      prefetchNeighbours(ask);
    }
  });
}

/** Fetches the layers before and after the selected one ahead (the arrow keys' next stops), once it is drawn; then
 * the run's stored details (runAhead). */
function prefetchNeighbours(ask: MapAsk): void {
  const layers = S.run?.record.layers ?? [];
  const k = layers.findIndex((l) => l.tensor === ask.tensor);
  for (const n of [k + 1, k - 1]) if (k >= 0 && n >= 0 && n < layers.length) void fetchMap({ ...ask, tensor: layers[n].tensor }, true);
  runAhead();
}

/** Once the run's first detail map and all its thumbnails are drawn (they come first): every layer's stored detail
 * map, fetched ahead in the background (webview/alignment/mapCache.ts fetchRunAhead), so that a first look at any
 * layer paints from here. Nothing for a run without stored details. */
export function runAhead(): void {
  const run = S.run;
  const sel = S.persisted.selected;
  if (!run || !sel || S.detail?.tensor !== sel || S.thumbs.size < run.record.layers.length) return;
  const runDir = run.runDir;
  const ask = askOf(runDir, sel);
  // Each map's cells are coloured in idle time as it comes (0.6 MB of canvas each, dropped with the map).
  const colourAhead = (map: MapPayload) => requestIdleCallback(() => prepareColours(map, detailScale(map)), { timeout: 3000 });
  void fetchRunAhead(ask, run.record.layers, () => S.run?.runDir === runDir, colourAhead);
}

function currentMap(): MapPayload | undefined {
  const sel = S.persisted.selected ?? '';
  return (S.detail && S.detail.tensor === sel ? S.detail : undefined) ?? S.thumbs.get(sel);
}

export function drawThumbs(): void {
  const all = document.querySelectorAll<HTMLCanvasElement>('canvas.thumb');
  let drawn = 0;
  all.forEach((c) => {
    const m = S.thumbs.get(c.dataset.tensor!);
    if (m && c.dataset.drawn !== '1') {
      drawMap(c, m, 72);
      c.dataset.drawn = '1';
    }
    if (c.dataset.drawn === '1') drawn++;
  });
  if (all.length) perf.thumbsDrawn(drawn, all.length);
}

export function redrawThumbs(): void {
  document.querySelectorAll<HTMLCanvasElement>('canvas.thumb').forEach((c) => {
    c.dataset.drawn = '';
  });
  drawThumbs();
}

/** Draws the selected layer's map (`cached`: from the view's cache, for the timing record). */
export function drawDetail(cached = false): void {
  const canvas = document.getElementById('heatmap') as HTMLCanvasElement | null;
  const bar = document.getElementById('colourbar') as HTMLCanvasElement | null;
  const map = currentMap();
  if (!canvas || !bar || !map) return;
  const l = S.run?.record.layers.find((x) => x.tensor === map.tensor);
  const barWidth = 58;
  const size = Math.max(100, Math.min(480, width() - 24 - barWidth - 6));
  const s = detailScale(map);
  drawMap(canvas, map, size, s);
  drawColourBar(bar, map.min, map.max, parseFloat(canvas.style.height), barWidth, s);
  canvas.dataset.drawn = '1';
  canvas.dataset.sorted = map.rowOrder ? '1' : '';
  canvas.dataset.tensor = map.tensor;
  canvas.dataset.rows = String(map.outRows);
  canvas.dataset.cols = String(map.outCols);
  canvas.dataset.scale = s.log ? 'log' : 'linear';
  const slot = document.getElementById('top-slot');
  const key = `${map.tensor}|${map.rowOrder ? 'sorted' : 'raw'}`;
  if (slot && map.top && slot.dataset.key !== key) {
    slot.dataset.key = key;
    const table = topTableOf(map);
    if (table) slot.replaceChildren(table);
  }
  canvas.setAttribute('aria-label', `transport map of ${l?.name ?? map.tensor}, ${map.rows} by ${map.cols}`);
  const hover = document.getElementById('hover')!;
  const scale = document.getElementById('scale')!;
  // The detail not here yet: the layer's thumbnail stands in (same ramp and kind of scale, over its own block means),
  // said so, until the detail's answer replaces it (select()).
  const placeholder = map !== S.detail;
  canvas.dataset.placeholder = placeholder ? '1' : '';
  const n = samplesText() ? ` · N: ${map.rows}×${map.cols} neurons${samplesText()}` : '';
  scale.textContent = placeholder ? placeholderText(map, scaleText(map, s, formatValue)) : `${scaleText(map, s, formatValue)}${n}`;
  hover.textContent = HOVER_HINT;
  canvas.onmousemove = (e) => {
    const c = cellAt(canvas.getBoundingClientRect(), map, e.clientX, e.clientY);
    hover.textContent = placeholder ? describeThumbnailCell(c) : describeHover(map, c);
  };
  canvas.onmouseleave = () => {
    hover.textContent = HOVER_HINT;
  };
  perf.detailDrawn(map.tensor, !placeholder, cached);
}

/** The scale line under a thumbnail standing in for the detail map. */
function placeholderText(thumb: MapPayload, scale: string): string {
  const order = S.persisted.sortByMatch ? ', rows in original order' : '';
  return `Thumbnail (${thumb.outRows}×${thumb.outCols} block means${order}) shown while the ${DETAIL_SIDE}² detail loads · ${scale}`;
}
