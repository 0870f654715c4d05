// Generates BENCHMARKS.md from bench/: the section registry (bench/sections.json), each section's results JSON
// (written by a bench script in the otfuse-bench/1 format, see ARCHITECTURE.md "How to add a benchmark section") and
// its narrative markdown. `--check` compares instead of writing and exits 1 when BENCHMARKS.md is stale (CI).
// Usage: node scripts/gen-benchmarks.mjs [--check]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RENDERERS } from './gen-benchmarks-renderers.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REGISTRY = 'bench/sections.json';
const OUT = 'BENCHMARKS.md';
export const FORMAT = 'otfuse-bench/1';
/** Envelope fields every results file carries (null = not recorded by the run that wrote it). */
const ENVELOPE = ['format', 'command', 'machine', 'date', 'load'];

class BenchError extends Error {}

function readText(rel) {
  const file = path.join(ROOT, rel);
  if (!fs.existsSync(file)) throw new BenchError(`${rel}: file not found (named in ${REGISTRY})`);
  return fs.readFileSync(file, 'utf8');
}

function readJson(rel) {
  try {
    return JSON.parse(readText(rel));
  } catch (e) {
    if (e instanceof BenchError) throw e;
    throw new BenchError(`${rel}: not valid JSON (${e.message})`);
  }
}

/** Loads one results file and checks its envelope; returns { file, ...doc }. */
export function loadResults(rel) {
  const doc = readJson(rel);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new BenchError(`${rel}: expected a JSON object`);
  for (const key of ENVELOPE) if (!(key in doc)) throw new BenchError(`${rel}: missing envelope field "${key}" (${FORMAT}: ${ENVELOPE.join(', ')})`);
  if (doc.format !== FORMAT) throw new BenchError(`${rel}: format is ${JSON.stringify(doc.format)}, expected "${FORMAT}"`);
  if (typeof doc.command !== 'string' || !doc.command) throw new BenchError(`${rel}: "command" must be the command line that wrote it`);
  if (doc.load !== null && typeof doc.load !== 'number') throw new BenchError(`${rel}: "load" must be the 1-minute load average (a number) or null`);
  return { file: rel, ...doc };
}

const fmtDate = (d) => (d === null ? 'date not recorded' : /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(d) ? `${d.slice(0, 10)} ${d.slice(11, 16)} UTC` : d);

/** One provenance line per results file: where the numbers are, what wrote them, when, where, under what load. */
export function provenance(doc) {
  const load = doc.load === null ? 'load average not recorded' : `1-minute load average ${doc.load.toFixed(2)} at the start`;
  return `*Results: [\`${doc.file}\`](${doc.file}) · \`${doc.command}\` · ${fmtDate(doc.date)} · ${doc.machine ?? 'machine not recorded'} · ${load}.*`;
}

const PLACEHOLDER = /^<!-- results(?::([\w-]+))? -->$/;

/** Puts the renderer's blocks into the narrative at its `<!-- results -->` / `<!-- results:NAME -->` lines. */
function splice(narrative, blocks, rel) {
  const used = new Set();
  const lines = narrative.trimEnd().split('\n');
  const out = lines.map((line) => {
    const m = PLACEHOLDER.exec(line.trim());
    if (!m) return line;
    const name = m[1] ?? 'main';
    if (!(name in blocks))
      throw new BenchError(`${rel}: placeholder "${line.trim()}" names no block of its renderer (blocks: ${Object.keys(blocks).join(', ')})`);
    used.add(name);
    return blocks[name];
  });
  for (const [name, md] of Object.entries(blocks)) if (!used.has(name)) out.push('', md);
  return out.join('\n');
}

/** A section's parts: `parts: [{ name, renderer, results }]`, or one part from its own `renderer` + `results`. */
function partsOf(section, where) {
  const parts = section.parts ?? [{ name: 'main', renderer: section.renderer, results: section.results }];
  for (const p of parts) {
    if (typeof p.renderer !== 'string' || !Array.isArray(p.results)) throw new BenchError(`${where}: each part needs "renderer" and "results" (a list)`);
    if (!RENDERERS[p.renderer]) throw new BenchError(`${where}: unknown renderer "${p.renderer}" (known: ${Object.keys(RENDERERS).join(', ')})`);
  }
  return parts;
}

function renderSection(section, i) {
  const where = `${REGISTRY} entry ${i} (${section.id ?? '?'})`;
  for (const key of ['id', 'title', 'narrative']) if (!(key in section)) throw new BenchError(`${where}: missing "${key}"`);
  const blocks = {};
  const docs = [];
  for (const part of partsOf(section, where)) {
    const partDocs = part.results.map(loadResults);
    docs.push(...partDocs);
    let out;
    try {
      out = RENDERERS[part.renderer](partDocs, section);
    } catch (e) {
      throw new BenchError(`${where}: renderer "${part.renderer}" failed on ${part.results.join(', ')}: ${e.message}`);
    }
    if (typeof out === 'string') blocks[part.name ?? 'main'] = out;
    else Object.assign(blocks, out);
  }
  const body = splice(readText(section.narrative), blocks, section.narrative);
  const files = docs.map((d) => d.file).join(', ');
  const source = `<!-- generated from ${section.narrative} + ${files} by scripts/gen-benchmarks.mjs; edit those, not this -->`;
  return [`## ${section.title}`, '', source, '', docs.map(provenance).join('\n\n'), '', body].join('\n');
}

const anchor = (title) =>
  title
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');

/** The `## ` headings of the history file (hand-written sections kept verbatim), for the table of contents. */
function historyHeadings(rel) {
  return readText(rel)
    .split('\n')
    .filter((l) => l.startsWith('## '))
    .map((l) => l.slice(3));
}

/** The whole of BENCHMARKS.md as a string. */
export function generate() {
  const registry = readJson(REGISTRY);
  if (!Array.isArray(registry.sections)) throw new BenchError(`${REGISTRY}: expected { "intro": …, "sections": [ … ] }`);
  const ids = new Set();
  for (const s of registry.sections) {
    if (ids.has(s.id)) throw new BenchError(`${REGISTRY}: section id "${s.id}" twice`);
    ids.add(s.id);
  }
  const parts = [
    '# Benchmarks',
    '',
    '<!-- Generated by `node scripts/gen-benchmarks.mjs` from bench/sections.json; do not edit by hand (CI runs it with --check). -->',
    '',
    readText(registry.intro).trimEnd(),
    '',
    ...registry.sections.map((s) => `- [${s.title}](#${anchor(s.title)})`),
    `- Older measurements, kept as written at the time in [${registry.history}](${registry.history}):`,
    ...historyHeadings(registry.history).map((h) => `  - [${h.replace(/ \((issue \d|`|\d{4}-).*$/, '')}](${registry.history}#${anchor(h)})`),
    '',
    ...registry.sections.map((s, i) => renderSection(s, i) + '\n'),
  ];
  return parts.join('\n').trimEnd() + '\n';
}

function main() {
  const check = process.argv.includes('--check');
  let text;
  try {
    text = generate();
  } catch (e) {
    if (!(e instanceof BenchError)) throw e;
    console.error(`gen-benchmarks: ${e.message}`);
    process.exit(1);
  }
  const target = path.join(ROOT, OUT);
  const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
  if (check) {
    if (current !== text) {
      console.error(`${OUT} is stale: run \`node scripts/gen-benchmarks.mjs\` and commit the result (sources: ${REGISTRY}).`);
      process.exit(1);
    }
    console.log(`${OUT} is up to date`);
    return;
  }
  if (current === text) return console.log(`${OUT} unchanged`);
  const tmp = `${target}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, target);
  console.log(`wrote ${OUT}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
