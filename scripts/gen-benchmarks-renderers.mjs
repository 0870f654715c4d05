// The renderer registry of scripts/gen-benchmarks.mjs: name → (results docs, section entry) → markdown, either one
// string (put at the narrative's `<!-- results -->` line, else after it) or named blocks ({ name: markdown }, put at
// `<!-- results:name -->`). A new section whose results are a plain table needs no renderer: use "table" (columns +
// rows in the JSON). Add a renderer here only when the table is derived (ratios, means, curves).

/** A markdown table; `|` inside cells is escaped. */
export function mdTable(header, rows) {
  const cell = (c) => String(c ?? '').replace(/\|/g, '\\|');
  return [`| ${header.map(cell).join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

/** A fraction as a percentage with `digits` decimals. */
export const pct = (x, digits = 2) => (x === undefined || x === null ? '—' : (100 * x).toFixed(digits));

function only(docs, name) {
  if (docs.length !== 1) throw new Error(`renderer "${name}" takes one results file, got ${docs.length}`);
  return docs[0];
}

const CELL = {
  text: (v) => (v === undefined || v === null ? '' : String(v)),
  int: (v) => (typeof v === 'number' ? v.toLocaleString('en-US') : CELL.text(v)),
  pct: (v, c) => pct(v, c.digits ?? 2),
  fixed: (v, c) => (typeof v === 'number' ? v.toFixed(c.digits ?? 2) : CELL.text(v)),
};

/**
 * Generic: `columns: [{ key, label, format?: text|int|pct|fixed, digits? }]`, `rows: [{ key: value }]`; several
 * results files give one table each (with their `caption` above when present).
 */
function table(docs) {
  return docs
    .map((doc) => {
      if (!Array.isArray(doc.columns) || !Array.isArray(doc.rows)) throw new Error(`${doc.file}: the "table" renderer needs "columns" and "rows"`);
      for (const c of doc.columns) if (c.format && !CELL[c.format]) throw new Error(`${doc.file}: column ${c.key}: unknown format "${c.format}"`);
      const md = mdTable(
        doc.columns.map((c) => c.label ?? c.key),
        doc.rows.map((r) => doc.columns.map((c) => CELL[c.format ?? 'text'](r[c.key], c))),
      );
      return doc.caption ? `${doc.caption}\n\n${md}` : md;
    })
    .join('\n\n');
}

const ms = (x) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : x >= 10 ? `${x.toFixed(1)} ms` : `${x.toFixed(3)} ms`);
const ratio = (x, y) => `${(x / y).toFixed(2)}×`;

/**
 * bench/ot/side-by-side.ts: otfuse vs POT per shape, user CPU per call and ratio; parity (EMD cost and marginals;
 * Sinkhorn absolute and relative plan differences, both marginal errors and iteration counts); wall times in a line.
 * Fields added later (POT's iterations, the kernel, relative differences) show as "—" in older results files.
 */
function otSideBySide(docs) {
  const doc = only(docs, 'ot-side-by-side');
  const e1 = (x) => (typeof x === 'number' && Number.isFinite(x) ? x.toExponential(1) : '—');
  const rows = doc.results.map((r) => [
    `${r.n}×${r.m}`,
    `${ms(r.emd.user_ms)} (${r.emd.method})`,
    ms(r.pot.emd_user_s * 1000),
    `**${ratio(r.emd.user_ms, r.pot.emd_user_s * 1000)}**`,
    `${ms(r.sinkhorn.user_ms)} (${r.sinkhorn.iterations}${r.sinkhorn.kernel ? `, ${r.sinkhorn.kernel}` : ''})`,
    `${ms(r.pot.sinkhorn_user_s * 1000)} (${r.pot.sinkhorn_iterations ?? '—'})`,
    `**${ratio(r.sinkhorn.user_ms, r.pot.sinkhorn_user_s * 1000)}**`,
  ]);
  const header = ['shape', 'EMD otfuse (path)', 'EMD POT', '**EMD ratio**', 'Sinkhorn otfuse (iters, kernel)', 'Sinkhorn POT (iters)', '**Sinkhorn ratio**'];
  const parity = doc.results.map((r) => [
    `${r.n}×${r.m}`,
    e1(r.parity.emd_cost_diff),
    e1(r.emd.marginal_err),
    e1(r.parity.sinkhorn_plan_diff),
    e1(r.parity.sinkhorn_plan_rel),
    `${e1(r.sinkhorn.marginal_err)} / ${e1(r.parity.pot_sinkhorn_marginal_err)}`,
  ]);
  const parityHeader = [
    'shape',
    'EMD |cost − POT|',
    'EMD marginal err',
    'Sinkhorn max abs diff',
    'Sinkhorn max rel diff',
    'Sinkhorn marginal err otfuse / POT',
  ];
  const pot = doc.results[0]?.pot.pot ?? '?';
  const inner = doc.results.some((r) => r.inner_sinkhorn) ? ' (EMD) / `inner_sinkhorn` calls (Sinkhorn), the same counts on both sides,' : '';
  const setup =
    `Sinkhorn reg ${doc.reg}; POT ${pot}; median of ${doc.reps} rounds of \`inner\` calls${inner} per shape. ` +
    'Ratio = otfuse / POT in user CPU time per call (≤ 1 = otfuse at or under POT).';
  const parityText =
    "Parity. EMD: |cost − POT's cost| and the plan's max marginal error. Sinkhorn: max |plan − POT's plan| (absolute), max " +
    "|plan − POT's| / POT's over POT's nonzero entries (relative), and each plan's max |row or column sum − marginal|.";
  const wall =
    'Wall time of the same calls (one thread each side; on a loaded machine mostly the wait for a core): ' +
    doc.results
      .map(
        (r) =>
          `${r.n}×${r.m} EMD ${ms(r.emd.wall_ms)} vs ${ms(r.pot.emd_wall_s * 1000)}, Sinkhorn ${ms(r.sinkhorn.wall_ms)} vs ${ms(r.pot.sinkhorn_wall_s * 1000)}`,
      )
      .join('; ') +
    '.';
  return [setup, mdTable(header, rows), parityText, mdTable(parityHeader, parity), wall].join('\n\n');
}

/** bench/quality/merge.bench.ts: every method's chosen setting on val5k, test10k (± sd over DARE seeds), halves. */
function merge(docs) {
  const doc = only(docs, 'merge');
  return mdTable(
    ['model', 'setting (chosen on val5k)', 'val5k', 'test10k', 'test, classes 0–4', 'test, classes 5–9'],
    doc.rows.map((r) => [
      r.model,
      r.setting,
      r.val === undefined ? '—' : `${pct(r.val)} %`,
      `${pct(r.test)} %${r.sd !== undefined ? ` ± ${pct(r.sd)}` : ''}`,
      r.halves ? `${pct(r.halves[0])} %` : '—',
      r.halves ? `${pct(r.halves[1])} %` : '—',
    ]),
  );
}

const PARTIAL_TRUNKS = ['map', 'fused', 'anchor', 'fitted/last', 'fitted/fused', 'fitted/anchor'];

/**
 * bench/quality/noniid-partial.bench.ts (`kind: 'noniid-partial'`): blocks `partial-<scenario>` (10k test % — val %
 * in brackets, alone where test was not measured — per cut and trunk; K½ = after block K + 1's attention) and `partial-<scenario>-product` (the trunk the
 * product chose per K on held-out calibration rows, per class half, with every candidate's held-out KL).
 */
function noniidPartial(doc, blocks) {
  const one = doc.parameters;
  // "test (val)", or "(val)" where the row's test was not measured.
  const cell = (p) => (p ? (p.test !== undefined ? `${pct(p.test, 1)} (${pct(p.val, 1)})` : `(${pct(p.val, 1)})`) : '');
  const cuts = [];
  for (const p of doc.points) {
    const key = `${p.k}${p.attention ? '½' : ''}`;
    if (!cuts.some((c) => c.key === key)) cuts.push({ key, k: p.k + (p.attention ? 0.5 : 0), points: [] });
    cuts.find((c) => c.key === key).points.push(p);
  }
  cuts.sort((a, b) => a.k - b.k);
  const trunks = PARTIAL_TRUNKS.filter((t) => doc.points.some((p) => p.trunk === t));
  const ratio = (c) => Math.max(...c.points.map((p) => p.parameters)) / one;
  blocks[`partial-${doc.scenario}`] = mdTable(
    ['K', '× one parent', 'ends (ensemble / full fusion)', ...trunks],
    cuts.map((c) => {
      const end = c.points.find((p) => p.trunk === 'ensemble' || p.trunk === 'full fusion');
      return [c.key, ratio(c).toFixed(2), end ? `${end.trunk}: ${cell(end)}` : '', ...trunks.map((t) => cell(c.points.find((p) => p.trunk === t)))];
    }),
  );
  blocks[`partial-${doc.scenario}-product`] = mdTable(
    ['K', '× one parent', 'trunk chosen', 'held-out KL to the ensemble (fused / anchor / fitted)', 'val %', '10k test %', 'classes 0–4 %', 'classes 5–9 %'],
    doc.product.map((p) => [
      p.k,
      (p.parameters / one).toFixed(2),
      p.trunk === 'fitted' ? `fitted (from ${p.candidates.find((c) => c.trunk === 'fitted')?.from})` : p.trunk,
      ['fused', 'anchor', 'fitted'].map((t) => p.candidates.find((c) => c.trunk === t)?.heldOutKl?.toFixed(3) ?? '—').join(' / '),
      pct(p.val, 1),
      pct(p.test, 1),
      pct(p.lo, 1),
      pct(p.hi, 1),
    ]),
  );
}

/** bench/quality/noniid-anchor.bench.ts: block `anchor-<scenario>`, one-shot and KD per anchor weight, per class group. */
function noniidAnchor(doc, blocks) {
  const g = doc.groups.map((x) => `${x[0]}–${x[x.length - 1]}`);
  blocks[`anchor-${doc.scenario}`] = mdTable(
    [
      'start',
      'one-shot val %',
      'one-shot test %',
      ...g.map((x) => `test ${x} %`),
      'KD val %',
      `KD test % (${doc.seeds} seeds)`,
      ...g.map((x) => `KD test ${x} %`),
    ],
    doc.rows.map((r) => [
      r.model,
      pct(r.oneShot.val, 1),
      pct(r.oneShot.test, 1),
      ...r.oneShot.testGroups.map((x) => pct(x, 1)),
      pct(r.kd.val, 1),
      `${pct(r.kd.test, 1)} ± ${pct(r.kd.testSd, 1)}`,
      ...r.kd.testGroups.map((x) => pct(x, 1)),
    ]),
  );
}

/** bench/quality/noniid.bench.ts: per scenario the rows and the partial-fusion curve (blocks `<name>` and `<name>-curve`). */
function noniid(docs) {
  const blocks = {};
  for (const doc of docs) {
    if (doc.kind === 'noniid-partial') {
      noniidPartial(doc, blocks);
      continue;
    }
    if (doc.kind === 'noniid-anchor') {
      noniidAnchor(doc, blocks);
      continue;
    }
    for (const [scenario, res] of Object.entries(doc.results)) {
      // A tagged run (another training of the parents, bench --dir) renders as `<tag>-<scenario>` blocks.
      const name = doc.tag ? `${doc.tag}-${scenario}` : scenario;
      blocks[name] = mdTable(
        ['model', 'val %', '10k test %', 'classes 0–4 %', 'classes 5–9 %', 'parameters'],
        res.rows.map((r) => [
          r.model,
          pct(r.val, 1),
          r.sd !== undefined ? `${pct(r.test, 1)} ± ${pct(r.sd, 1)} (${r.seeds.length} seeds)` : pct(r.test, 1),
          pct(r.lo, 1),
          pct(r.hi, 1),
          r.parameters === undefined ? '' : r.parameters.toLocaleString('en-US'),
        ]),
      );
      const one = res.curve[res.curve.length - 1].parameters;
      // Curves measured with the partial models' own finetune (1 epoch KD, as every other start) add its columns.
      const kd = res.curve.some((c) => c.kd);
      blocks[`${name}-curve`] = mdTable(
        [
          'K',
          'trunk',
          'parameters',
          '× one parent',
          'val %',
          '10k test %',
          'classes 0–4 %',
          'classes 5–9 %',
          ...(kd ? ['+ 1 epoch KD: val %', '+ 1 epoch KD: 10k test %', '+ KD: classes 0–4 %', '+ KD: classes 5–9 %'] : []),
        ],
        res.curve.map((c, k) => [
          k,
          c.trunk ?? (k === 0 ? '(ensemble)' : k === res.curve.length - 1 ? '(fused model)' : 'fused'),
          c.parameters.toLocaleString('en-US'),
          (c.parameters / one).toFixed(2),
          pct(c.val, 1),
          pct(c.test, 1),
          pct(c.lo, 1),
          pct(c.hi, 1),
          ...(!kd
            ? []
            : c.kd
              ? [pct(c.kd.val, 1), `${pct(c.kd.test, 1)} ± ${pct(c.kd.sd, 1)} (${c.kd.seeds.length} seeds)`, pct(c.kd.lo, 1), pct(c.kd.hi, 1)]
              : ['', '', '', '']),
        ]),
      );
    }
  }
  return blocks;
}

const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
/** Sample standard deviation (n − 1), as the bench scripts report it. */
const sd = (xs) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((s, x) => s + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
/** Seeds' accuracies (fractions) as "mean ± sd (each seed)" in percent. */
const seedCell = (xs) => `${pct(mean(xs))} ± ${pct(sd(xs))} (${xs.map((x) => pct(x)).join(', ')})`;

/** bench/quality/quality.bench.ts: parents, ensemble, one-shot fusions, finetunes over seeds (val5k, test10k). */
function qualityVit(docs) {
  const doc = only(docs, 'quality-vit');
  let last = '';
  const rows = doc.rows.map((r) => {
    const group = r.group === last ? '' : r.group;
    last = r.group;
    const test = r.seeds ? seedCell(r.seeds) : pct(r.test);
    return [group, r.label + (r.note ? ` (${r.note})` : ''), r.val === undefined ? '' : pct(r.val), test];
  });
  const setup =
    `${doc.seeds} finetune seeds, ${doc.epochs} epoch(s) on ${doc.trainLimit.toLocaleString('en-US')} training images, lr ${doc.lr}` +
    (doc.lrTrials?.length ? ` (chosen on val5k from ${doc.lrTrials.map((t) => `${t.lr}: ${pct(t.val)} %`).join(', ')})` : '') +
    `; distillation T ${doc.kd.temperature}, α ${doc.kd.alpha}; auto-tune chose ${doc.autotune.chosenLabel}.`;
  return `${setup}\n\n${mdTable(['', 'model', 'val5k %', 'test10k % (mean ± sd, seeds)'], rows)}`;
}

/** bench/quality/kd-grid.bench.ts: one row per (lr, T, α, batch) with the fused start's val5k after the finetune. */
function kdGrid(docs) {
  const rows = docs.flatMap((doc) =>
    doc.rows.map((r) => [
      r.lr,
      r.alpha > 0 ? r.temp : '—',
      r.alpha,
      r.batch ?? 128,
      pct(r.val),
      `${Math.round(r.imgPerSec).toLocaleString('en-US')}`,
      doc.file,
    ]),
  );
  return mdTable(['lr', 'T', 'α', 'batch', 'val5k % (fused + 1 epoch)', 'img/s', 'results'], rows);
}

/** bench/quality/wise.bench.ts: λ·finetuned + (1 − λ)·start, λ chosen on val5k; one row per results file. */
function wise(docs) {
  const cell = (p) => (p ? `${p.testMean.toFixed(2)} ± ${p.testSd.toFixed(2)} (λ ${p.lambda}; λ = 1: ${p.testNoInterp.toFixed(2)})` : '');
  const rows = docs.map((doc) => {
    const p = doc.pipelines;
    const parents = (doc.parents ?? [doc.a, doc.b]).map((f) =>
      f
        .split('/')
        .pop()
        .replace(/\.onnx$/, ''),
    );
    return [parents.join(' + '), cell(p['fused ⊕ anchor']), cell(p['fused ⊕ fused start']), cell(p['parent ⊕ parent start'])];
  });
  return mdTable(['parents fused', 'fused + FT ⊕ anchor', 'fused + FT ⊕ fused start', 'better parent + same FT ⊕ itself'], rows);
}

/** A results file that carries its own markdown (`table`), as written by the bench script that measured it. */
function markdown(docs) {
  return docs
    .map((doc) => {
      if (typeof doc.table !== 'string') throw new Error(`${doc.file}: the "markdown" renderer needs a "table" string`);
      return doc.table;
    })
    .join('\n\n');
}

/** Perplexity (lower is better) to two decimals; `xs` an array of seeds gives "mean ± sd". */
const ppl = (x) => (Array.isArray(x) ? `${mean(x).toFixed(2)} ± ${sd(x).toFixed(2)}` : x === undefined ? '—' : x.toFixed(2));

/**
 * bench/decoders/quality.bench.ts (`quality`: test perplexity of parents, ensemble, vanilla, OT and, with --kd, the
 * three finetuned arms over seeds) and bench/decoders/finetune_scale.py (`finetune`: otfuse vs PyTorch per step).
 */
function decoders(docs) {
  const blocks = {};
  for (const doc of docs) {
    if (Array.isArray(doc.results)) {
      blocks.quality = mdTable(
        ['family', 'parents (test)', 'ensemble', 'vanilla', 'OT one-shot', 'OT / vanilla', 'fused + KD', 'better parent + KD', 'vanilla + KD'],
        doc.results.map((r) => {
          const arms = r.kd?.arms ?? {};
          return [
            r.family,
            Object.entries(r.parents)
              .map(([name, p]) => `${name} ${ppl(p.test)}`)
              .join(' · '),
            ppl(r.ensemble.test),
            ppl(r.vanilla.test),
            ppl(r.ot.test),
            (r.ot.test / r.vanilla.test).toFixed(3),
            ppl(arms.fused?.test),
            ppl(arms.parent?.test),
            ppl(arms.vanilla?.test),
          ];
        }),
      );
    } else if (doc.sides) {
      const o = doc.sides.otfuse,
        t = doc.sides.torch;
      blocks.finetune = mdTable(
        ['', 'CPU s / step (user + sys)', `peak RSS, ${doc.steps[1]} steps`],
        [
          ['otfuse finetune', o.cpu_per_step.toFixed(1), `${Math.round(o.peak_rss_mib).toLocaleString('en-US')} MiB`],
          ['PyTorch', t.cpu_per_step.toFixed(1), `${Math.round(t.peak_rss_mib).toLocaleString('en-US')} MiB`],
          ['otfuse / PyTorch', `${(o.cpu_per_step / t.cpu_per_step).toFixed(2)}×`, `${(o.peak_rss_mib / t.peak_rss_mib).toFixed(2)}×`],
        ],
      );
    } else throw new Error(`${doc.file}: the "decoders" renderer takes quality.bench.ts or finetune_scale.py results`);
  }
  return blocks;
}

/** Renderer name (as written in bench/sections.json) → function. */
export const RENDERERS = {
  table,
  'ot-side-by-side': otSideBySide,
  merge,
  noniid,
  'quality-vit': qualityVit,
  'kd-grid': kdGrid,
  wise,
  markdown,
  decoders,
};
