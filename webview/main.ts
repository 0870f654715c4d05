// The otfuse webviews (Alignment side panel and the .onnx model editor). Renders only what the extension sends
// (run.json, maps from maps.safetensors, inspect results) as typed messages; keeps its selection via setState.
import {
  provideVSCodeDesignSystem, vsCodeButton, vsCodeDivider, vsCodeProgressRing, vsCodeTag, vsCodeBadge,
} from '@vscode/webview-ui-toolkit';
import type { HostToWebview, LiveState, MapPayload, RunView, WebviewToHost } from './protocol';
import { cellAt, describeCell, drawLine, drawMap, formatValue } from './heatmap';
import type { DataArg, InspectResult, LayerMapInfo, EvaluateResult } from '../worker/types';

provideVSCodeDesignSystem().register(vsCodeButton(), vsCodeDivider(), vsCodeProgressRing(), vsCodeTag(), vsCodeBadge());

declare function acquireVsCodeApi(): { postMessage(m: WebviewToHost): void; getState(): any; setState(s: any): void };
const vscode = acquireVsCodeApi();
const post = (m: WebviewToHost) => vscode.postMessage(m);
const app = document.getElementById('app')!;
const view = document.body.dataset.view as 'alignment' | 'model';

interface State { runDir?: string; selected?: string }
let state: State = vscode.getState() ?? {};
const saveState = () => vscode.setState(state);

// ---------- small DOM helpers
function h<K extends keyof HTMLElementTagNameMap>(tag: K, props?: Record<string, any>, ...children: (Node | string | null | undefined)[]): HTMLElementTagNameMap[K];
function h(tag: string, props?: Record<string, any>, ...children: (Node | string | null | undefined)[]): HTMLElement;
function h(tag: string, props: Record<string, any> = {}, ...children: (Node | string | null | undefined)[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}
const pct = (x?: number) => (x === undefined || x === null || Number.isNaN(x) ? '—' : `${(100 * x).toFixed(2)}%`);
const basename = (p: string) => p.split(/[\\/]/).pop() ?? p;
function button(label: string, onclick: () => void, appearance: 'primary' | 'secondary' = 'secondary', id?: string) {
  return h('vscode-button', { appearance, onclick, id, 'aria-label': label }, label);
}
function section(title: string, id: string, ...children: (Node | null)[]) {
  return h('section', { id, 'aria-labelledby': `${id}-h` }, h('h2', { id: `${id}-h` }, title), ...children);
}

// ---------- Alignment view
let run: RunView | null = null;
let live: LiveState | null = null;
const thumbs = new Map<string, MapPayload>();
let detail: MapPayload | null = null;
const liveStages = new Set<string>();

function renderAlignment(): void {
  app.replaceChildren();
  const liveEl = renderLive();
  if (liveEl) app.append(liveEl);
  if (!run) {
    if (!liveEl) app.append(h('p', { class: 'muted', id: 'empty' }, 'No run selected. Fuse models (select two or more .onnx files in the Explorer → right-click → Fuse Models) or pick a run in the Runs list.'));
    return;
  }
  const r = run.record;
  app.append(
    h('header', { class: 'run-header' },
      h('h1', { id: 'run-name' }, r.name),
      h('vscode-tag', { id: 'run-status', class: `status-${r.status}` }, r.status),
      h('div', { class: 'muted small' }, `${r.models.map(basename).join(' + ')} · anchor ${basename(r.anchor)}${r.provider ? ` · ${r.provider.used}` : ''}`),
      dataLine(r.data, r.evalData),
      h('div', { class: 'actions' },
        r.status === 'done' ? button('Finetune', () => post({ type: 'action', action: 'finetuneRun' }), 'primary', 'btn-finetune') : null,
        r.status === 'done' ? button('Re-evaluate', () => post({ type: 'action', action: 'reevaluateRun' }), 'secondary', 'btn-reevaluate') : null,
        r.status === 'done' ? button('Reveal model', () => post({ type: 'action', action: 'reveal' }), 'secondary', 'btn-reveal') : null,
      ),
    ),
  );
  if (r.error) app.append(h('p', { class: 'error', role: 'alert' }, `${r.error.code}: ${r.error.message}`));
  app.append(renderAccuracy(), renderLayers());
  const ft = renderFinetune();
  if (ft) app.append(ft);
  drawThumbs();
  drawDetail();
}

/** Which data the run was calibrated and evaluated on (a path or a data spec). */
function dataLine(data?: DataArg, evalData?: DataArg): HTMLElement | null {
  const name = (d?: DataArg) => { const p = typeof d === 'string' ? d : d?.path; return typeof p === 'string' && p ? basename(p) : undefined; };
  const calib = name(data), evaluated = name(evalData);
  if (!calib && !evaluated) return null;
  const text = calib && evaluated && JSON.stringify(data) !== JSON.stringify(evalData)
    ? `calibration data ${calib} · evaluated on ${evaluated}` : `data ${calib ?? evaluated}`;
  return h('div', { class: 'muted small', id: 'run-data' }, text);
}

function renderLive(): HTMLElement | null {
  if (!live || (live.state !== 'running' && run && live.state === 'done')) return null;
  const ratio = live.total ? (live.done ?? 0) / live.total : undefined;
  const lossCanvas = live.loss.length > 1 ? h('canvas', { id: 'live-loss', role: 'img', 'aria-label': 'training loss so far' }) : null;
  const el = section('Progress', 'live',
    h('div', { class: 'live-row' },
      live.state === 'running' ? h('vscode-progress-ring', {}) : h('vscode-tag', { class: `status-${live.state}` }, live.state),
      h('div', {},
        h('div', { id: 'live-title' }, live.title),
        h('div', { id: 'live-stage', class: 'muted' }, [live.stage, live.layer, live.message].filter(Boolean).join(' · ')),
      ),
    ),
    ratio !== undefined ? h('progress', { id: 'live-progress', max: '1', value: String(ratio), 'aria-label': 'progress' }) : null,
    live.layersDone.length ? h('div', { class: 'muted small', id: 'live-layers' }, `aligned: ${live.layersDone.length} layer group(s) — last ${live.layersDone[live.layersDone.length - 1]}`) : null,
    lossCanvas,
    live.error ? h('p', { class: 'error', role: 'alert' }, live.error) : null,
    live.state === 'running' ? button('Cancel', () => post({ type: 'action', action: 'cancel' }), 'secondary', 'btn-cancel') : null,
  );
  if (lossCanvas) requestAnimationFrame(() => drawLine(lossCanvas as HTMLCanvasElement, live!.loss.map((p) => ({ x: p.step, y: p.loss })), Math.max(160, app.clientWidth - 24), 90));
  return el;
}

function renderAccuracy(): HTMLElement {
  const metrics = run!.record.metrics;
  const table = h('table', { id: 'accuracy', class: 'grid' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Model'), h('th', { scope: 'col', class: 'num' }, 'Accuracy'), h('th', { scope: 'col', class: 'num' }, 'Loss'))),
    h('tbody', {}, ...metrics.map((m) => h('tr', { 'data-label': m.label },
      h('th', { scope: 'row', title: m.file ?? '' }, m.label),
      h('td', { class: 'num acc', 'data-accuracy': m.accuracy ?? '' }, pct(m.accuracy)),
      h('td', { class: 'num', 'data-loss': m.loss ?? '' }, m.loss === undefined ? '—' : m.loss.toFixed(4)),
    ))),
  );
  const max = Math.max(1e-9, ...metrics.map((m) => m.accuracy ?? 0));
  const chart = h('div', { class: 'bars', role: 'img', 'aria-label': 'accuracy chart: ' + metrics.map((m) => `${m.label} ${pct(m.accuracy)}`).join(', ') },
    ...metrics.map((m) => h('div', { class: 'bar-row' },
      h('span', { class: 'bar-label' }, m.label),
      h('span', { class: 'bar-track' }, barFill(m.label, m.accuracy, max)),
      h('span', { class: 'bar-value' }, pct(m.accuracy)),
    )),
  );
  return section('Accuracy', 'accuracy-section', metrics.length ? table : h('p', { class: 'muted' }, 'Not evaluated.'), metrics.length ? chart : null);
}

function barFill(label: string, accuracy: number | undefined, max: number): HTMLElement {
  const kind = /finetune/i.test(label) ? 'bar-ft' : /^ot\b/i.test(label) ? 'bar-ot' : /vanilla|^vf\b/i.test(label) ? 'bar-vf' : 'bar-parent';
  const el = h('span', { class: `bar ${kind}` });
  el.style.width = `${(100 * (accuracy ?? 0)) / max}%`; // CSSOM, not a style attribute: allowed by the CSP
  return el;
}

function renderLayers(): HTMLElement {
  const layers = run!.record.layers;
  if (!layers.length) return section('Aligned layers', 'layers', h('p', { class: 'muted' }, 'No transport maps in this run.'));
  if (!state.selected || !layers.some((l) => l.tensor === state.selected)) state.selected = layers[0].tensor;
  const list = h('div', { class: 'thumbs', role: 'listbox', 'aria-label': 'aligned layers', id: 'layer-list' },
    ...layers.map((l, k) => {
      const card = h('div', {
        class: 'thumb-card', role: 'option', tabindex: l.tensor === state.selected ? '0' : '-1', 'aria-selected': String(l.tensor === state.selected),
        'data-tensor': l.tensor, title: `${l.name} (${l.kind}) ${l.rows}×${l.cols}`,
        onclick: () => select(l.tensor),
        onkeydown: (e: KeyboardEvent) => {
          if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(l.tensor); }
          const next = e.key === 'ArrowRight' || e.key === 'ArrowDown' ? k + 1 : e.key === 'ArrowLeft' || e.key === 'ArrowUp' ? k - 1 : -1;
          if (next >= 0 && next < layers.length) { e.preventDefault(); select(layers[next].tensor, true); }
        },
      },
      h('canvas', { class: 'thumb', 'data-tensor': l.tensor, role: 'img', 'aria-label': `transport map of ${l.name}` }),
      h('div', { class: 'thumb-name' }, l.name),
      h('div', { class: 'muted small' }, `${l.kind} · ${l.rows}×${l.cols}${run!.record.models.length > 2 ? ` · model ${l.model}` : ''}`));
      return card;
    }),
  );
  const sel = layers.find((l) => l.tensor === state.selected)!;
  return section(`Aligned layers (${layers.length})`, 'layers',
    h('div', { id: 'detail' },
      h('h3', { id: 'detail-name' }, `${sel.name} — ${sel.kind} · ${sel.rows}×${sel.cols}`),
      h('div', { class: 'heatmap-wrap' }, h('canvas', { id: 'heatmap', tabindex: '0', role: 'img', 'aria-label': `transport map of ${sel.name}, ${sel.rows} by ${sel.cols}` })),
      h('div', { id: 'hover', class: 'muted small', 'aria-live': 'polite' }, 'Hover the map: i (row, other model), j (column, anchor), value.'),
      h('div', { id: 'scale', class: 'muted small' }),
      renderDiagnostics(sel),
    ),
    h('h3', {}, 'All layers'),
    list);
}

function renderDiagnostics(l: LayerMapInfo): HTMLElement {
  const entries = Object.entries(l.diagnostics ?? {});
  return h('table', { id: 'diagnostics', class: 'grid' },
    h('caption', {}, 'Diagnostics'),
    h('tbody', {}, ...entries.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', { class: 'num' }, formatValue(v))))));
}

function renderFinetune(): HTMLElement | null {
  const ft = run!.record.finetune;
  if (!ft) return null;
  const canvas = h('canvas', { id: 'loss-curve', role: 'img', 'aria-label': 'finetuning loss curve' });
  requestAnimationFrame(() => drawLine(canvas, ft.history.map((p) => ({ x: p.step, y: p.loss })), Math.max(160, app.clientWidth - 24), 110));
  return section('Finetune', 'finetune',
    h('div', { class: 'muted small' }, `${ft.steps} steps · ${ft.epochs} epoch(s) · ${ft.seconds.toFixed(1)} s · ${ft.samplesPerSecond.toFixed(0)} samples/s`),
    canvas,
    ft.evals.length ? h('table', { class: 'grid', id: 'finetune-evals' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Epoch'), h('th', { class: 'num' }, 'Accuracy'), h('th', { class: 'num' }, 'Loss'))),
      h('tbody', {}, ...ft.evals.map((e) => h('tr', {}, h('td', {}, String(e.epoch)), h('td', { class: 'num' }, pct(e.accuracy)), h('td', { class: 'num' }, e.loss.toFixed(4)))))) : null);
}

function select(tensor: string, focus = false): void {
  if (!run) return;
  state.selected = tensor;
  saveState();
  detail = thumbs.get(tensor) ?? null; // a coarse view until the full-resolution one arrives
  post({ type: 'selectLayer', runDir: run.runDir, tensor });
  renderAlignment();
  if (focus) (document.querySelector(`.thumb-card[data-tensor="${CSS.escape(tensor)}"]`) as HTMLElement | null)?.focus();
}

function drawThumbs(): void {
  document.querySelectorAll<HTMLCanvasElement>('canvas.thumb').forEach((c) => {
    const m = thumbs.get(c.dataset.tensor!);
    if (m) { drawMap(c, m, 72); c.dataset.drawn = '1'; }
  });
}

function drawDetail(): void {
  const canvas = document.getElementById('heatmap') as HTMLCanvasElement | null;
  const map = detail && detail.tensor === state.selected ? detail : thumbs.get(state.selected ?? '');
  if (!canvas || !map) return;
  const size = Math.max(120, Math.min(480, app.clientWidth - 24));
  drawMap(canvas, map, size);
  canvas.dataset.drawn = '1';
  const hover = document.getElementById('hover')!;
  const scale = document.getElementById('scale')!;
  scale.textContent = `${map.rows}×${map.cols}${map.outRows < map.rows || map.outCols < map.cols ? ` shown as ${map.outRows}×${map.outCols} block means` : ''} · min ${formatValue(map.min)} · max ${formatValue(map.max)}`;
  canvas.onmousemove = (e) => { hover.textContent = describeCell(cellAt(canvas, map, e.clientX, e.clientY)); };
  canvas.onmouseleave = () => { hover.textContent = 'Hover the map: i (row, other model), j (column, anchor), value.'; };
}

// ---------- model editor
function renderModel(m: Extract<HostToWebview, { type: 'model' }>): void {
  app.replaceChildren();
  app.append(h('header', { class: 'run-header' },
    h('h1', { id: 'model-name' }, basename(m.file)),
    h('div', { class: 'muted small' }, m.file),
    h('div', { class: 'actions' },
      button('Evaluate', () => post({ type: 'action', action: 'evaluate' }), 'primary', 'btn-evaluate'),
      button('Fuse with…', () => post({ type: 'action', action: 'fuseWith' }), 'secondary', 'btn-fuse'),
      button('Finetune', () => post({ type: 'action', action: 'finetune' }), 'secondary', 'btn-finetune'),
    )));
  if (m.error) { app.append(h('p', { class: 'error', role: 'alert' }, m.error)); return; }
  const i = m.inspect as InspectResult;
  const s = i.summary;
  app.append(
    section('Model', 'summary', h('table', { class: 'grid', id: 'model-summary' }, h('tbody', {},
      ...([['Parameters', s.parameterCount.toLocaleString('en-US')], ['Nodes', String(s.nodeCount)], ['Initializers', String(s.initializerCount)],
        ['IR version', String(s.irVersion)], ['Opsets', Object.entries(s.opsets).map(([d, v]) => `${d || 'ai.onnx'} ${v}`).join(', ')], ['Producer', s.producer || '—'],
        ['Execution provider', `${i.provider.used} (requested ${i.provider.requested})`]] as [string, string][])
        .map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', { 'data-key': k }, v)))))),
    section('Inputs and outputs', 'io', h('table', { class: 'grid', id: 'model-io' },
      h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'Name'), h('th', {}, 'Type'), h('th', {}, 'Shape'))),
      h('tbody', {}, ...[...s.inputs.map((x) => ['input', x] as const), ...s.outputs.map((x) => ['output', x] as const)].map(([dir, x]) =>
        h('tr', {}, h('td', { class: 'muted' }, dir), h('td', {}, x.name), h('td', {}, x.type), h('td', {}, `[${x.shape.join(', ')}]`)))))),
    section('Alignment structure', 'alignment',
      i.alignment ? h('div', {},
        h('div', { class: 'muted small' }, `hidden ${i.alignment.hiddenSize} · ${i.alignment.layers} layers · ${i.alignment.heads} heads × ${i.alignment.headDim} · ${i.alignment.groups.length} aligned groups`),
        h('pre', { id: 'alignment-text' }, i.alignment.text))
        : h('p', { class: 'muted', id: 'alignment-error' }, `Not available: ${m.alignmentError ?? 'unknown'}`)),
    section('Operators', 'ops', h('div', { class: 'ops' }, ...Object.entries(s.opHistogram).sort((a, b) => b[1] - a[1]).map(([op, n]) => h('vscode-tag', {}, `${op} ×${n}`)))),
  );
}

// ---------- messages
window.addEventListener('message', (event: MessageEvent<HostToWebview>) => {
  const m = event.data;
  switch (m.type) {
    case 'run':
      if (m.run?.runDir !== run?.runDir) { thumbs.clear(); detail = null; }
      run = m.run;
      if (run && state.runDir !== run.runDir) { state = { runDir: run.runDir }; saveState(); }
      if (run) document.body.dataset.run = run.runDir;
      renderAlignment();
      if (run && state.selected) post({ type: 'selectLayer', runDir: run.runDir, tensor: state.selected });
      break;
    case 'thumbnails':
      if (run?.runDir !== m.runDir) break;
      for (const t of m.maps) thumbs.set(t.tensor, t);
      drawThumbs();
      drawDetail();
      document.body.dataset.thumbs = String(thumbs.size);
      break;
    case 'map':
      if (run?.runDir !== m.runDir || m.map.tensor !== state.selected) break;
      detail = m.map;
      drawDetail();
      break;
    case 'live':
      live = m.live;
      if (live?.state === 'running') { liveStages.add(live.stage); document.body.dataset.liveStages = [...liveStages].join(' '); }
      if (view === 'alignment') renderAlignment();
      break;
    case 'model':
      renderModel(m);
      break;
    case 'evaluation': {
      const r = m.result;
      document.getElementById('evaluation')?.remove();
      const el = section('Evaluation', 'evaluation', h('table', { class: 'grid' }, h('tbody', {},
        ...([['Data', m.data ? basename(m.data) : '—'], ['Accuracy', pct(r.accuracy)], ['Loss', r.loss.toFixed(4)], ['Samples', String(r.samples)],
          ['Time', `${r.seconds.toFixed(2)} s on ${r.provider.used}`]] as [string, string][])
          .map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', { 'data-key': k }, v))))));
      document.getElementById('summary')?.after(el);
      break;
    }
  }
});

let resizeTimer: number | undefined;
window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = window.setTimeout(() => { if (view === 'alignment') { drawThumbs(); drawDetail(); } }, 150); });

if (view === 'alignment') renderAlignment();
post({ type: 'ready' });
