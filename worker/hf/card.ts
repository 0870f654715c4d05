// The model card (README.md) of an exported folder: where the weights came from, how they were fused, and the
// accuracies measured in the run — only numbers that were measured, nothing invented.
import path from 'node:path';
import { shareableName } from '../io/names';

/** A measured row as the card shows it: what it measured (role) and on which data (file name, N, sha256). */
export interface CardMetric {
  label: string;
  role?: string;
  accuracy?: number;
  loss?: number;
  sd?: number;
  data?: { name: string; n: number; sha256?: string };
}

export interface CardInfo {
  parents?: string[];
  /** sha256 per parent (same order as parents), when known. */
  parentHashes?: (string | undefined)[];
  anchor?: string;
  recipe?: Record<string, unknown>;
  metrics?: CardMetric[];
  /** The measurements were made on the calibration data (not a held-out result). */
  evalIsCalibration?: boolean;
  run?: string;
}

export interface CardFacts extends CardInfo {
  like: string;
  model: string;
  architecture: string;
  changes: Record<string, [unknown, unknown]>;
}

export function modelCard(f: CardFacts): string {
  const name = (p: string) => (path.isAbsolute(p) ? shareableName(p) : p);
  const lines = [
    '---',
    'library_name: transformers',
    'tags:',
    '- otfuse',
    '- model-fusion',
    '- optimal-transport',
    '---',
    '',
    `# ${f.parents?.length ? `OT fusion of ${f.parents.map(name).join(' + ')}` : name(f.model)}`,
    '',
    `A \`${f.architecture}\` checkpoint written by otfuse from \`${name(f.model)}\`, in the layout, dtype and`,
    `tokenizer/preprocessor of \`${name(f.like)}\`.`,
    '',
  ];
  if (f.parents?.length) {
    lines.push('## Parents', '');
    f.parents.forEach((p, k) => {
      const sha = f.parentHashes?.[k];
      // File names only: a card is shared, and absolute paths would publish the user's home folder and layout.
      lines.push(
        `- \`${name(p)}\`${f.anchor && path.resolve(p) === path.resolve(f.anchor) ? ' (anchor: its widths and graph define the result)' : ''}${sha ? ` — sha256 \`${sha}\`` : ''}`,
      );
    });
    lines.push('');
  }
  if (f.recipe && Object.keys(f.recipe).length) {
    lines.push(
      '## Recipe',
      '',
      // A same-base merge (`otfuse merge`) records its method under `merge`: no optimal transport was involved.
      typeof f.recipe.merge === 'string'
        ? `Same-base merge (\`${f.recipe.merge}\`, mergekit's semantics; no alignment), as run by otfuse:`
        : 'Transformer fusion with optimal transport (Imfeld et al., ICLR 2024), as run by otfuse:',
      '',
      '```json',
      JSON.stringify(f.recipe, null, 2),
      '```',
      '',
    );
  }
  if (f.metrics?.length) lines.push(...measuredSection(f.metrics, f.evalIsCalibration));
  const changed = Object.entries(f.changes);
  if (changed.length) {
    lines.push('## Config changes', '', ...changed.map(([k, [a, b]]) => `- \`${k}\`: ${String(a)} → ${String(b)}`), '');
  }
  if (f.run) lines.push(`Run: \`${name(f.run)}\``, '');
  return lines.join('\n');
}

const fmtData = (d: CardMetric['data']) => (d ? `${d.name}, N = ${d.n.toLocaleString('en-US')}` : '—');

/** The evaluation data (name, N, sha256) and every measured row with its role and the data it was measured on. */
function measuredSection(metrics: CardMetric[], onCalibration?: boolean): string[] {
  const sets = new Map<string, NonNullable<CardMetric['data']>>();
  for (const m of metrics) if (m.data) sets.set(`${m.data.name}|${m.data.n}|${m.data.sha256 ?? ''}`, m.data);
  const lines = ['## Evaluation data', ''];
  if (!sets.size) lines.push('Not recorded (a run written before otfuse recorded its data).');
  for (const d of sets.values()) lines.push(`- \`${d.name}\`: N = ${d.n.toLocaleString('en-US')} samples${d.sha256 ? `, sha256 \`${d.sha256}\`` : ''}`);
  if (onCalibration) lines.push('', '**Measured on the calibration data the fusion was aligned with: not a held-out result.**');
  lines.push('', '## Measured in the run', '', '| model | role | accuracy | loss | data |', '| --- | --- | ---: | ---: | --- |');
  for (const m of metrics) {
    const acc = m.accuracy === undefined ? '—' : `${(m.accuracy * 100).toFixed(2)} %${m.sd !== undefined ? ` ± ${(m.sd * 100).toFixed(2)}` : ''}`;
    lines.push(`| ${m.label} | ${m.role ?? '—'} | ${acc} | ${m.loss === undefined ? '—' : m.loss.toFixed(4)} | ${fmtData(m.data)} |`);
  }
  lines.push('');
  return lines;
}
