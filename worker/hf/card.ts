// The model card (README.md) of an exported folder: where the weights came from, how they were fused, and the
// accuracies measured in the run — only numbers that were measured, nothing invented.
import path from 'node:path';

export interface CardInfo {
  parents?: string[];
  anchor?: string;
  recipe?: Record<string, unknown>;
  metrics?: { label: string; accuracy?: number; loss?: number }[];
  run?: string;
}

export interface CardFacts extends CardInfo {
  like: string;
  model: string;
  architecture: string;
  changes: Record<string, [unknown, unknown]>;
}

export function modelCard(f: CardFacts): string {
  const name = (p: string) => path.basename(p);
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
    for (const p of f.parents)
      // File names only: a card is shared, and absolute paths would publish the user's home folder and layout.
      lines.push(`- \`${name(p)}\`${f.anchor && path.resolve(p) === path.resolve(f.anchor) ? ' (anchor: its widths and graph define the result)' : ''}`);
    lines.push('');
  }
  if (f.recipe && Object.keys(f.recipe).length) {
    lines.push(
      '## Recipe',
      '',
      'Transformer fusion with optimal transport (Imfeld et al., ICLR 2024), as run by otfuse:',
      '',
      '```json',
      JSON.stringify(f.recipe, null, 2),
      '```',
      '',
    );
  }
  if (f.metrics?.length) {
    lines.push('## Measured in the run', '', '| model | accuracy | loss |', '| --- | ---: | ---: |');
    for (const m of f.metrics)
      lines.push(
        `| ${m.label} | ${m.accuracy === undefined ? '—' : `${(m.accuracy * 100).toFixed(2)} %`} | ${m.loss === undefined ? '—' : m.loss.toFixed(4)} |`,
      );
    lines.push('');
  }
  const changed = Object.entries(f.changes);
  if (changed.length) {
    lines.push('## Config changes', '', ...changed.map(([k, [a, b]]) => `- \`${k}\`: ${String(a)} → ${String(b)}`), '');
  }
  if (f.run) lines.push(`Run: \`${name(f.run)}\``, '');
  return lines.join('\n');
}
