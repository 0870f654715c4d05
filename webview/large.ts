// One map large in an editor tab: zoom with the slider, hover read-out, colour bar, PNG export.
import type { MapPayload } from '../contracts/protocol';
import { h, button, canvasPng } from './dom';
import { on, request } from './rpc';
import { cellAt, composeHeatmapImage, describeCell, drawColourBar, drawMap } from './heatmap';

function render(title: string, map: MapPayload): void {
  const app = document.getElementById('app')!;
  const canvas = h('canvas', { id: 'large-map', role: 'img', 'aria-label': title }) as HTMLCanvasElement;
  const bar = h('canvas', { id: 'large-bar', role: 'img', 'aria-label': 'colour scale' }) as HTMLCanvasElement;
  const hover = h('div', { id: 'hover', class: 'muted small' }, 'Hover the map: row i (other model), column j (anchor), value.');
  const zoom = h('input', {
    type: 'range',
    min: '256',
    max: '2048',
    step: '64',
    value: String(Math.min(1024, Math.max(512, app.clientWidth - 120))),
    id: 'zoom',
    'aria-label': 'zoom',
  }) as HTMLInputElement;
  const draw = () => {
    drawMap(canvas, map, Number(zoom.value));
    drawColourBar(bar, map.min, map.max, Math.min(parseFloat(canvas.style.height), 600));
    canvas.dataset.drawn = '1';
  };
  zoom.addEventListener('input', draw);
  canvas.onmousemove = (e) => {
    hover.textContent = describeCell(cellAt(canvas.getBoundingClientRect(), map, e.clientX, e.clientY));
  };
  app.replaceChildren(
    h('h1', {}, title),
    h(
      'div',
      { class: 'actions' },
      h('label', { for: 'zoom' }, 'Zoom '),
      zoom,
      button(
        'PNG',
        () =>
          void canvasPng(composeHeatmapImage(map, title, 1024)).then((bytes) =>
            request('saveFile', { suggestedName: `${title.split(' ')[0]}.png`, bytes, filter: 'png' }),
          ),
        'secondary',
        'btn-export-png',
      ),
    ),
    h('div', { class: 'muted small' }, `${map.rows}×${map.cols}${map.outRows < map.rows ? ` shown as ${map.outRows}×${map.outCols} block means` : ''}`),
    hover,
    h('div', { class: 'heatmap-wrap large' }, canvas, bar),
  );
  draw();
}

export function startLarge(): void {
  on('large', (m) => render(m.title, m.map));
  void request('ready', {});
}
