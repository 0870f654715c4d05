// The .onnx model view: summary, inputs/outputs, lineage (for models otfuse wrote), alignment structure, ops.
import type { HostEvent } from '../contracts/protocol';
import { h, button, section, basename, pct } from './dom';
import { on, request } from './rpc';

type ModelEvent = Extract<HostEvent, { type: 'model' }>;

function lineageSection(meta: Record<string, string> | undefined): HTMLElement | null {
  if (!meta?.['otfuse.version']) return null;
  const json = <T>(k: string): T | undefined => {
    try {
      return JSON.parse(meta[k]) as T;
    } catch {
      return undefined;
    }
  };
  const parents = json<{ file: string; path?: string; sha256: string }[]>('otfuse.parents') ?? [];
  const acc = json<Record<string, number>>('otfuse.accuracies') ?? {};
  const recipe = json<Record<string, unknown>>('otfuse.recipe');
  const rows: [string, string | HTMLElement][] = [
    ['Made by', `otfuse ${meta['otfuse.version']} (${meta['otfuse.kind'] ?? 'fused'})`],
    [
      'Parents',
      h(
        'ul',
        { class: 'plain' },
        ...parents.map((p) => h('li', { title: p.path ?? p.file }, `${p.file} `, h('code', { class: 'muted small' }, `sha256 ${p.sha256.slice(0, 16)}…`))),
      ),
    ],
    ...(meta['otfuse.anchor'] ? [['Anchor', basename(meta['otfuse.anchor'])] as [string, string]] : []),
    ...(recipe
      ? [
          [
            'Recipe',
            Object.entries(recipe)
              .filter(([, v]) => v !== undefined)
              .map(([k, v]) => `${k} ${Array.isArray(v) ? v.join('/') : String(v)}`)
              .join(' · '),
          ] as [string, string],
        ]
      : []),
    ...(Object.keys(acc).length
      ? [
          [
            'Accuracy when written',
            `${Object.entries(acc)
              .map(([k, v]) => `${k} ${pct(v)}`)
              .join(' · ')}${meta['otfuse.evalData'] ? ` on ${meta['otfuse.evalData']}` : ''}`,
          ] as [string, string],
        ]
      : []),
    ...(meta['otfuse.run'] ? [['Run', meta['otfuse.run']] as [string, string]] : []),
  ];
  return section(
    'Lineage',
    'lineage',
    h(
      'table',
      { class: 'grid', id: 'model-lineage' },
      h('tbody', {}, ...rows.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', { 'data-key': k }, v)))),
    ),
  );
}

function renderModel(m: ModelEvent): void {
  const app = document.getElementById('app')!;
  const act = (action: 'evaluate' | 'fuseWith' | 'finetune' | 'retry') => () => void request('action', { action });
  app.replaceChildren(
    h(
      'header',
      { class: 'run-header' },
      h('h1', { id: 'model-name' }, basename(m.file)),
      h('div', { class: 'muted small' }, m.file),
      h(
        'div',
        { class: 'actions' },
        button('Evaluate', act('evaluate'), 'primary', 'btn-evaluate'),
        button('Fuse with…', act('fuseWith'), 'secondary', 'btn-fuse', 'Fuse this model with one or more others of the same architecture'),
        button('Finetune', act('finetune'), 'secondary', 'btn-finetune'),
      ),
    ),
  );
  if (m.error) {
    app.append(
      h('p', { class: 'error', role: 'alert' }, m.error),
      h(
        'div',
        { class: 'actions' },
        ...(m.errorActions ?? []).map((a) =>
          button(a === 'retry' ? 'Retry' : 'Open Settings', () => void request('action', { action: a }), 'secondary', `btn-${a}`),
        ),
      ),
    );
    return;
  }
  const i = m.inspect!;
  const s = i.summary;
  app.append(
    section(
      'Model',
      'summary',
      h(
        'table',
        { class: 'grid', id: 'model-summary' },
        h(
          'tbody',
          {},
          ...(
            [
              ['Parameters', s.parameterCount.toLocaleString('en-US')],
              ['Nodes', String(s.nodeCount)],
              ['Initializers', String(s.initializerCount)],
              ['IR version', String(s.irVersion)],
              [
                'Opsets',
                Object.entries(s.opsets)
                  .map(([d, v]) => `${d || 'ai.onnx'} ${v}`)
                  .join(', '),
              ],
              ['Producer', s.producer || '—'],
            ] as [string, string][]
          ).map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', { 'data-key': k }, v))),
        ),
      ),
    ),
    lineageSection(s.metadata) ?? '',
    section(
      'Inputs and outputs',
      'io',
      h(
        'table',
        { class: 'grid', id: 'model-io' },
        h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'Name'), h('th', {}, 'Type'), h('th', {}, 'Shape'))),
        h(
          'tbody',
          {},
          ...[...s.inputs.map((x) => ['input', x] as const), ...s.outputs.map((x) => ['output', x] as const)].map(([dir, x]) =>
            h('tr', {}, h('td', { class: 'muted' }, dir), h('td', {}, x.name), h('td', {}, x.type), h('td', {}, `[${x.shape.join(', ')}]`)),
          ),
        ),
      ),
    ),
    section(
      'Alignment structure',
      'alignment',
      i.alignment
        ? h(
            'div',
            {},
            h(
              'div',
              { class: 'muted small' },
              `hidden ${i.alignment.hiddenSize} · ${i.alignment.layers} layers · ${i.alignment.heads} heads × ${i.alignment.headDim} · ${i.alignment.groups.length} aligned groups`,
            ),
            h('pre', { id: 'alignment-text' }, i.alignment.text),
          )
        : h('p', { class: 'muted', id: 'alignment-error' }, `Not available: ${m.alignmentError ?? 'unknown'}`),
    ),
    section(
      'Operators',
      'ops',
      h(
        'div',
        { class: 'ops' },
        ...Object.entries(s.opHistogram)
          .sort((a, b) => b[1] - a[1])
          .map(([op, n]) => h('vscode-tag', {}, `${op} ×${n}`)),
      ),
    ),
  );
}

export function startModel(): void {
  on('model', renderModel);
  on('evaluation', (m) => {
    const r = m.result;
    document.getElementById('evaluation')?.remove();
    const el = section(
      'Evaluation',
      'evaluation',
      h(
        'table',
        { class: 'grid' },
        h(
          'tbody',
          {},
          ...(
            [
              ['Data', m.data ? basename(m.data) : '—'],
              ['Accuracy', pct(r.accuracy)],
              ['Loss', r.loss.toFixed(4)],
              ['Samples', String(r.samples)],
              ['Time', `${r.seconds.toFixed(2)} s on ${r.provider.used}`],
            ] as [string, string][]
          ).map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', { 'data-key': k }, v))),
        ),
      ),
    );
    document.getElementById('summary')?.after(el);
  });
  void request('ready', {});
}
