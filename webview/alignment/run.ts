// The run's header (name, readable status, models, data, actions), the accuracy table with its baselines and
// what it was measured on, and the finetune section (loss curve with the baseline's, per-epoch evaluation).
import type { DataArg, ModelMetrics, RunRecord } from '../../contracts/protocol';
import { h, button, pct, basename, section, statusTag, canvasPng } from '../dom';
import { request } from '../rpc';
import { lossChart } from '../chart';
import { composeChart, provenanceLine } from '../exportImage';
import type uPlot from 'uplot';
import { S, width } from './state';

const dataName = (d?: DataArg) => {
  const p = typeof d === 'string' ? d : d?.path;
  return typeof p === 'string' && p ? basename(p) : undefined;
};

export function header(r: RunRecord, runDir: string): HTMLElement {
  const busy = S.busyRuns.includes(runDir);
  const act = (action: Parameters<typeof request<'action'>>[1]['action']) => () => void request('action', { action, runDir });
  const done = r.status === 'done';
  const finetune = button(
    'Finetune',
    act('finetuneRun'),
    'primary',
    'btn-finetune',
    busy ? 'A job is running on this run' : 'Finetune the fused model (and the anchor the same way, as a baseline)',
  );
  const reevaluate = button('Re-evaluate', act('reevaluateRun'), 'secondary', 'btn-reevaluate');
  for (const b of [finetune, reevaluate]) {
    if (busy) b.setAttribute('disabled', '');
    b.classList.add('needs-idle');
  }
  return h(
    'header',
    { class: 'run-header' },
    h('div', { class: 'title-row' }, h('h1', { id: 'run-name' }, r.name), runStatus(r, busy)),
    h('div', { class: 'muted small' }, `${r.models.map(basename).join(' + ')} · anchor ${basename(r.anchor)}${r.provider ? ` · ${r.provider.used}` : ''}`),
    dataLine(r),
    mergeLine(r),
    h(
      'div',
      { class: 'actions' },
      done ? finetune : null,
      done ? reevaluate : null,
      done ? button('Reveal model', act('reveal'), 'secondary', 'btn-reveal') : null,
      button('Compare…', act('compare'), 'secondary', 'btn-compare', 'Compare this run with another, side by side'),
      button('Re-run with edits…', act('rerun'), 'secondary', 'btn-rerun', 'Edit the recipe and fuse the same models again'),
    ),
  );
}

/** Same-base runs (issue 30): the merge's method and parameters, or fuse's notice that the parents share a base. */
function mergeLine(r: RunRecord): HTMLElement | null {
  if (r.merge) {
    const params = Object.entries(r.merge.params)
      .map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : String(v)}`)
      .join(', ');
    return h(
      'div',
      { class: 'muted small', id: 'run-merge' },
      `merge ${r.merge.method}${params ? ` (${params})` : ''}${r.merge.base ? ` · base ${basename(r.merge.base)}` : ''}`,
    );
  }
  if (!r.sharedBase?.shared) return null;
  return h(
    'div',
    { class: 'warning small', id: 'run-shared-base' },
    `${r.sharedBase.message}${r.sharedBase.base ? ` (base: ${basename(r.sharedBase.base)})` : ''} — otfuse: Merge Models (shared base)`,
  );
}

/** The run's status tag: never "DONE" while a job (a finetune, a re-evaluation) still works on the run. */
export function runStatus(r: RunRecord, busy: boolean): HTMLElement {
  if (!busy) return statusTag(r.status, 'run-status');
  const tag = statusTag('running', 'run-status');
  const title = S.live?.runDir && S.live.state === 'running' ? S.live.title : '';
  tag.textContent = /^Finetuning/.test(title) ? 'FINETUNING' : /^Re-evaluating/.test(title) ? 'EVALUATING' : 'BUSY';
  return tag;
}

function dataLine(r: RunRecord): HTMLElement | null {
  const calib = dataName(r.data),
    evaluated = dataName(r.evalData);
  if (!calib && !evaluated) return null;
  const text = r.evalIsCalibration
    ? `calibration data ${calib} · evaluated on the same data`
    : evaluated && evaluated !== calib
      ? `calibration data ${calib ?? '—'} · evaluated on ${evaluated}`
      : `data ${calib ?? evaluated}`;
  return h('div', { class: 'muted small', id: 'run-data' }, text);
}

/** A column header with a short form for narrow side bars (CSS shows one; words never break mid-word). */
function headerText(wide: string, narrow: string): HTMLElement[] {
  return [h('span', { class: 'wide-text' }, wide), h('span', { class: 'narrow-text', 'aria-hidden': 'true' }, narrow)];
}

/** The bar/row style of a metric row, by its role (never its label). */
function kindOf(m: ModelMetrics): string {
  switch (m.role) {
    case 'baseline':
      return m.start === 'anchor' && !m.seeds ? 'bar-baseline' : 'bar-ft';
    case 'finetuned':
      return 'bar-ft';
    case 'fused':
    case 'merged':
      return 'bar-ot';
    case 'vanilla':
    case 'ensemble':
      return 'bar-vf';
    default:
      return 'bar-parent';
  }
}

export function accuracy(r: RunRecord, runDir: string): HTMLElement {
  const metrics = r.metrics;
  const parents = metrics.filter((m) => (m.role === 'parent' || m.role === 'anchor') && m.accuracy !== undefined);
  const best = parents.length ? Math.max(...parents.map((m) => m.accuracy!)) : undefined;
  const delta = (m: ModelMetrics) =>
    best === undefined || m.accuracy === undefined || parents.includes(m) ? '' : `${m.accuracy >= best ? '+' : ''}${(100 * (m.accuracy - best)).toFixed(2)}`;
  const on = dataName(r.evalData ?? r.data);
  // Causal LMs: perplexity (e^loss over the predicted next tokens; lower is better) next to next-token accuracy.
  const lm = metrics.some((m) => m.perplexity !== undefined);
  // No evaluation data recorded (fused with "Skip evaluation") but rows exist: a later finetune measured them on
  // the calibration data. Labelled like a calibration-data evaluation, never as a plain "Measured on".
  const onCalibration = r.evalIsCalibration || (r.evalData === undefined && r.data !== undefined);
  const caption = onCalibration
    ? h(
        'caption',
        { class: 'warning', id: 'accuracy-caption' },
        `Measured on the calibration data (${on}) — not a held-out result. Fuse with separate evaluation data for numbers you can report.`,
      )
    : on
      ? h(
          'caption',
          { id: 'accuracy-caption' },
          `Measured on ${on}${r.metrics.some((m) => m.role === 'finetuned' || m.role === 'baseline') ? ' · finetune rows: same data, same settings' : ''}${lm ? ' · perplexity: lower is better' : ''}`,
        )
      : null;
  const table = h(
    'table',
    { id: 'accuracy', class: 'grid' },
    caption,
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, 'Model'),
        lm
          ? h('th', { scope: 'col', class: 'num', title: 'Next-token accuracy' }, ...headerText('Next-token acc.', 'Acc.'))
          : h('th', { scope: 'col', class: 'num', title: 'Accuracy' }, ...headerText('Accuracy', 'Acc.')),
        h('th', { scope: 'col', class: 'num delta', title: 'percentage points vs the best parent' }, ...headerText('Δ best parent', 'Δ pt')),
        h('th', { scope: 'col', class: 'num loss' }, 'Loss'),
        lm ? h('th', { scope: 'col', class: 'num ppl', title: 'Perplexity: e^loss over the predicted next tokens — lower is better' }, 'Perplexity ↓') : null,
      ),
    ),
    h(
      'tbody',
      {},
      ...metrics.map((m) =>
        h(
          'tr',
          { 'data-label': m.label, 'data-role': m.role, class: `row-${kindOf(m).slice(4)}` },
          h('th', { scope: 'row', title: `${m.label}${m.file ? ` — ${m.file}` : ''}${m.loss !== undefined ? ` · loss ${m.loss.toFixed(4)}` : ''}` }, m.label),
          h('td', { class: 'num acc', 'data-accuracy': m.accuracy ?? '' }, pct(m.accuracy)),
          h('td', { class: 'num delta' }, delta(m)),
          h('td', { class: 'num loss', 'data-loss': m.loss ?? '' }, m.loss === undefined ? '—' : m.loss.toFixed(4)),
          lm ? h('td', { class: 'num ppl', 'data-perplexity': m.perplexity ?? '' }, m.perplexity === undefined ? '—' : m.perplexity.toFixed(2)) : null,
        ),
      ),
    ),
  );
  const max = Math.max(1e-9, ...metrics.map((m) => m.accuracy ?? 0));
  const chart = h(
    'div',
    { class: 'bars', role: 'img', 'aria-label': 'accuracy chart: ' + metrics.map((m) => `${m.label} ${pct(m.accuracy)}`).join(', ') },
    ...metrics.map((m) => {
      const fill = h('span', { class: `bar ${kindOf(m)}` });
      fill.style.width = `${(100 * (m.accuracy ?? 0)) / max}%`; // CSSOM, not a style attribute: allowed by the CSP
      return h(
        'div',
        { class: 'bar-row' },
        h('span', { class: 'bar-label', title: m.label }, m.label),
        h('span', { class: 'bar-track' }, fill),
        h('span', { class: 'bar-value' }, pct(m.accuracy)),
      );
    }),
  );
  const exports = h(
    'div',
    { class: 'actions small-actions' },
    button('CSV', () => void request('action', { action: 'exportAccuracyCsv', runDir }), 'secondary', 'btn-export-acc-csv', 'Export the accuracy table as CSV'),
    button(
      'Markdown',
      () => void request('action', { action: 'exportAccuracyMarkdown', runDir }),
      'secondary',
      'btn-export-acc-md',
      'Export the accuracy table as Markdown',
    ),
  );
  return section(
    'Accuracy',
    'accuracy-section',
    metrics.length ? table : h('p', { class: 'muted' }, 'Not evaluated. Re-evaluate the run on held-out data to fill this table.'),
    metrics.length ? chart : null,
    metrics.length ? exports : null,
  );
}

export function finetune(r: RunRecord): HTMLElement | null {
  const ft = r.finetune;
  if (!ft) return null;
  const holder = h('div', { id: 'loss-curve', class: 'chart' });
  const base = r.baselineFinetune;
  requestAnimationFrame(() => {
    const plot = lossChart(
      holder,
      ft.history.map((p) => ({ step: p.step, loss: p.loss })),
      Math.max(160, width() - 24),
      base ? { label: 'anchor, same finetune', points: base.history.map((p) => ({ step: p.step, loss: p.loss })) } : undefined,
    );
    holder.dataset.drawn = '1';
    (holder as HTMLElement & { plot?: uPlot }).plot = plot;
  });
  const png = button(
    'PNG',
    () => {
      const plot = (holder as HTMLElement & { plot?: uPlot }).plot;
      const train = (ft as { trainData?: { path: string; n?: number } }).trainData;
      const trained = train ? `trained on ${basename(train.path)}${train.n !== undefined ? ` (N ${train.n})` : ''}` : '';
      const c = plot && composeChart(plot, `${r.name} · training loss per step (${ft.steps} steps, ${ft.epochs} epoch(s))`, provenanceLine(r, trained));
      if (c) void canvasPng(c).then((bytes) => request('saveFile', { suggestedName: `${r.name}-loss.png`, bytes, filter: 'png' }));
    },
    'secondary',
    'btn-export-loss',
    'Export the loss curve as PNG',
  );
  return section(
    'Finetune',
    'finetune',
    h('div', { class: 'muted small' }, `${ft.steps} steps · ${ft.epochs} epoch(s) · ${ft.seconds.toFixed(1)} s · ${ft.samplesPerSecond.toFixed(0)} samples/s`),
    ft.trainData
      ? h(
          'div',
          { class: 'muted small', id: 'finetune-data' },
          `trained on ${basename(ft.trainData.path)} (N ${ft.trainData.n})${ft.evalData ? ` · evaluated on ${basename(ft.evalData.path)} (N ${ft.evalData.n})` : ''}`,
        )
      : null,
    holder,
    h('div', { class: 'actions small-actions' }, png),
    ft.evals.length
      ? h(
          'table',
          { class: 'grid', id: 'finetune-evals' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', {}, 'Epoch'),
              h('th', { class: 'num' }, 'Fused + finetune'),
              h('th', { class: 'num' }, base ? 'Anchor + same finetune' : 'Loss'),
            ),
          ),
          h(
            'tbody',
            {},
            ...ft.evals.map((e, k) =>
              h(
                'tr',
                {},
                h('td', {}, String(e.epoch)),
                h('td', { class: 'num' }, pct(e.accuracy)),
                h('td', { class: 'num' }, base ? pct(base.evals[k]?.accuracy) : e.loss.toFixed(4)),
              ),
            ),
          ),
        )
      : null,
  );
}
