// The Alignment side panel: a live slot (updated in place) above the shown run. The run's sections are built when
// the run (or its record) changes; selection, live progress and busy state update only what they concern.
import { h } from '../dom';
import { on, request } from '../rpc';
import * as live from './live';
import { accuracy, finetune, header, runStatus } from './run';
import { askFirst, drawDetail, drawThumbs, firstMapArrived, layersSection, redrawThumbs, runAhead, select } from './layers';
import { runShown } from './mapCache';
import { S, save, app, width } from './state';
import { partialSection } from '../pareto';
import * as perf from '../perf';

function renderRun(): void {
  const slot = document.getElementById('run-slot')!;
  const run = S.run;
  if (!run) {
    slot.replaceChildren(
      h(
        'p',
        { class: 'muted', id: 'empty' },
        'No run selected. Fuse models (select two or more .onnx files in the Explorer → right-click → Fuse Models) or pick a run in the Runs list.',
      ),
    );
    return;
  }
  const r = run.record;
  slot.replaceChildren(
    header(r, run.runDir),
    r.error ? h('p', { class: 'error', role: 'alert' }, `${r.error.code}: ${r.error.message}`) : '',
    accuracy(r, run.runDir),
    partialSection(r, width()) ?? '',
    layersSection(r, run.runDir),
    finetune(r) ?? '',
  );
  perf.listBuilt();
  drawThumbs();
  if (S.persisted.selected) select(S.persisted.selected, false, false);
}

function applyBusy(): void {
  const busy = !!S.run && S.busyRuns.includes(S.run.runDir);
  if (S.run) document.getElementById('run-status')?.replaceWith(runStatus(S.run.record, busy));
  for (const b of document.querySelectorAll<HTMLElement>('.needs-idle')) {
    if (busy) {
      b.setAttribute('disabled', '');
      b.title = 'A job is running on this run';
    } else b.removeAttribute('disabled');
  }
}

export function startAlignment(): void {
  app().replaceChildren(h('div', { id: 'live-slot' }), h('div', { id: 'run-slot' }));
  renderRun();
  on('run', (m) => {
    if (m.run) perf.runArrived(m.run.runDir);
    if (m.run?.runDir !== S.run?.runDir) {
      S.thumbs.clear();
      S.detail = null;
    }
    S.run = m.run;
    runShown(S.run?.runDir);
    if (S.run && S.persisted.runDir !== S.run.runDir) {
      S.persisted = { runDir: S.run.runDir, dismissed: S.persisted.dismissed };
      save();
    }
    if (S.run) document.body.dataset.run = S.run.runDir;
    if (S.run) askFirst(S.run.record, S.run.runDir, m.first);
    renderRun();
  });
  on('firstMap', (m) => firstMapArrived(m.runDir, m.tensor, m.map));
  on('thumbnails', (m) => {
    if (S.run?.runDir !== m.runDir) return;
    for (const t of m.maps) S.thumbs.set(t.tensor, t);
    drawThumbs();
    drawDetail();
    document.body.dataset.thumbs = String(S.thumbs.size);
    runAhead();
  });
  on('live', (m) => {
    S.live = m.live;
    live.render();
    applyBusy(); // the run's status tag names the job working on it
  });
  on('busyRuns', (m) => {
    S.busyRuns = m.runDirs;
    applyBusy();
  });
  let resizeTimer: number | undefined;
  let lastWidth = app().clientWidth;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => {
      if (Math.abs(app().clientWidth - lastWidth) < 8) return;
      lastWidth = app().clientWidth;
      renderRun(); // charts take their width at creation
      redrawThumbs();
    }, 200);
  });
  void request('ready', {});
}
