// Live progress of the running job, updated in place (the elements are built once per job and then only their
// text and values change). A failed or cancelled job leaves a one-line notice with Dismiss, not a block.
import { h, button, statusTag } from '../dom';
import { request } from '../rpc';
import { drawLine } from '../heatmap';
import { progressLine, stageName } from '../../contracts/progress';
import { S, save, app, width } from './state';

interface Parts {
  jobId: number;
  root: HTMLElement;
  stage: HTMLElement;
  progress: HTMLProgressElement;
  layers: HTMLElement;
  loss: HTMLCanvasElement;
  error: HTMLElement;
  status: HTMLElement;
  eta: HTMLElement;
  cancel: HTMLElement;
  dismiss: HTMLElement;
}
let parts: Parts | null = null;
const stagesSeen = new Set<string>();

function build(jobId: number): Parts {
  const stage = h('div', { id: 'live-stage', class: 'muted small' });
  const eta = h('div', { id: 'live-eta', class: 'muted small', 'aria-live': 'off' });
  const progress = h('progress', { id: 'live-progress', max: '1', value: '0', 'aria-label': 'progress' }) as HTMLProgressElement;
  const layers = h('div', { class: 'muted small', id: 'live-layers' });
  const loss = h('canvas', { id: 'live-loss', role: 'img', 'aria-label': 'training loss so far', hidden: true }) as HTMLCanvasElement;
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const status = h('span', { class: 'live-status' });
  const cancel = button('Cancel', () => void request('action', { action: 'cancel' }), 'secondary', 'btn-cancel');
  const dismiss = button(
    'Dismiss',
    () => {
      S.persisted.dismissed = [...(S.persisted.dismissed ?? []).slice(-20), jobId];
      save();
      void request('dismissLive', { jobId });
      render();
    },
    'secondary',
    'btn-dismiss',
  );
  const root = h(
    'section',
    { id: 'live', 'aria-label': 'job progress' },
    h('div', { class: 'live-row' }, status, h('div', { class: 'live-text' }, h('div', { id: 'live-title' }), stage, eta), cancel, dismiss),
    progress,
    layers,
    loss,
    error,
  );
  return { jobId, root, stage, progress, layers, loss, error, status, eta, cancel, dismiss };
}

/** Shows (or hides) the live section for S.live; creates its elements only when the job changes. */
export function render(): void {
  const live = S.live;
  const hidden = !live || live.state === 'done' || (S.persisted.dismissed ?? []).includes(live.jobId);
  const host = document.getElementById('live-slot');
  if (!host) return;
  if (hidden) {
    host.replaceChildren();
    parts = null;
    return;
  }
  if (live.state === 'running') {
    stagesSeen.add(live.stage);
    document.body.dataset.liveStages = [...stagesSeen].join(' ');
  }
  if (!parts || parts.jobId !== live.jobId) {
    parts = build(live.jobId);
    host.replaceChildren(parts.root);
  }
  const p = parts;
  p.root.className = `live-${live.state}`;
  (p.root.querySelector('#live-title') as HTMLElement).textContent = live.title;
  p.stage.textContent = [stageName(live.stage, live.message), live.layer, live.message].filter(Boolean).join(' · ');
  showTime();
  p.status.replaceChildren(live.state === 'running' ? h('vscode-progress-ring', { class: 'ring' }) : statusTag(live.state, 'live-state'));
  const ratio = live.total ? (live.done ?? 0) / live.total : undefined;
  p.progress.hidden = live.state !== 'running' || ratio === undefined;
  if (ratio !== undefined) p.progress.value = ratio;
  p.layers.textContent =
    live.state === 'running' && live.layersDone.length
      ? `aligned ${live.layersDone.length} layer group(s) — last ${live.layersDone[live.layersDone.length - 1]}`
      : '';
  p.loss.hidden = !(live.state === 'running' && live.loss.length > 1);
  if (!p.loss.hidden)
    drawLine(
      p.loss,
      live.loss.map((x) => ({ x: x.step, y: x.loss })),
      Math.max(160, width() - 24),
      80,
    );
  p.error.hidden = !live.error;
  // The first line, whole up to a few lines (a refusal names two files: both must show); the rest is in the
  // tooltip and the otfuse log.
  const short = (live.error ?? '').split('\n')[0];
  p.error.textContent = short.length > 480 ? `${short.slice(0, 477)}…` : short;
  p.error.title = live.error ?? '';
  p.stage.hidden = live.state !== 'running';
  p.eta.hidden = live.state !== 'running';
  p.cancel.hidden = live.state !== 'running';
  p.dismiss.hidden = live.state === 'running';
  void app;
}

let ticker: number | undefined;

/** Elapsed time and the time left (overall when the last run of this job is known, else this stage's), ticking
 * once a second while the job runs. */
function showTime(): void {
  const live = S.live;
  const el = parts?.eta;
  if (!live || !el || live.state !== 'running' || live.startedAt === undefined) {
    if (ticker !== undefined) clearInterval(ticker);
    ticker = undefined;
    return;
  }
  const t = { startedAt: live.startedAt, stageStartedAt: live.stageStartedAt ?? live.startedAt, expectedSeconds: live.expectedSeconds };
  el.textContent = progressLine(Date.now(), t, live.stage, live.message, live.done, live.total).replace(/^[^·]*· /, '');
  el.dataset.elapsed = String(Math.round((Date.now() - live.startedAt) / 1000));
  if (ticker === undefined) ticker = window.setInterval(showTime, 1000);
}
