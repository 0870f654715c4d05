// Seeded fuzzing of Hugging Face inputs (issue 25; the ONNX / .npz fuzz is fuzz.test.ts): config.json values and
// bytes, safetensors headers and offsets, shards and their index, tokenizer.json, .jsonl data, image folders and
// their preprocessor_config.json — and links (out of the folder, to /dev/zero, loops), FIFOs, devices and folders
// in place of each file. Every case must succeed (exit 0) or end with a documented error code (exit 1 or 2), print
// no stack trace, keep memory bounded, and leave every input file exactly as it was.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { engine } from '../../worker/api';
import { ERROR_CODES, toErrorInfo } from '../../worker/errors';
import { seededRandom } from '../../worker/random';
import { tempDir } from '../helpers';
import { hfDir } from '../hf/helpers';
import { hasStackTrace, runCliWatched } from './helpers';

const RSS_LIMIT = 1.5 * 2 ** 30;
const JSONL = '{"text": "good movie", "label": 2}\n{"text": "bad acting", "label": 0}\n{"text": "fine", "label": "neutral"}\n';
type Rand = () => number;
const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];

/** Every file under `dir` with its sha256 (regular files) or its kind (links, FIFOs, folders), not following links. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const p = path.join(e.parentPath ?? e.path, e.name);
    if (e.isSymbolicLink()) out.set(p, `link ${fs.readlinkSync(p)}`);
    else if (e.isFile()) out.set(p, crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
    else out.set(p, e.isDirectory() ? 'dir' : 'special');
  }
  return out;
}

function flipBytes(bytes: Buffer, rand: Rand, within = bytes.length): Buffer {
  const out = Buffer.from(bytes);
  const n = 1 + Math.floor(rand() * 8);
  for (let i = 0; i < n; i++) out[Math.floor(rand() * Math.min(within, out.length))] ^= 1 + Math.floor(rand() * 255);
  return out;
}

function mutateBytes(file: string, rand: Rand, within?: number): string {
  const bytes = fs.readFileSync(file);
  if (rand() < 0.25) {
    const at = Math.floor(rand() * bytes.length);
    fs.writeFileSync(file, bytes.subarray(0, at));
    return `truncated at ${at}`;
  }
  fs.writeFileSync(file, flipBytes(bytes, rand, within));
  return 'byte flips';
}

const VALUES: readonly unknown[] = [
  0,
  -1,
  1,
  2,
  1.5,
  1e308,
  -1e308,
  2 ** 53,
  1e-320,
  'constructor',
  '__proto__',
  'toString',
  'gelu',
  'relu',
  '',
  'x'.repeat(5000),
  null,
  true,
  false,
  [],
  [1, 2],
  {},
  { __proto__: null, a: 1 },
  { 0: 'a', 1: 'b' },
  { 0: 'a', 5: 'b' },
];

function setJsonField(file: string, rand: Rand, fields: readonly string[]): string {
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  const field = pick(rand, fields);
  const value = pick(rand, VALUES);
  if (rand() < 0.15) delete j[field];
  else j[field] = value;
  fs.writeFileSync(file, JSON.stringify(j));
  return `${field} = ${JSON.stringify(value)?.slice(0, 30)}`;
}

const CONFIG_FIELDS = [
  'hidden_size',
  'num_hidden_layers',
  'num_attention_heads',
  'intermediate_size',
  'hidden_act',
  'layer_norm_eps',
  'vocab_size',
  'max_position_embeddings',
  'type_vocab_size',
  'image_size',
  'patch_size',
  'num_channels',
  'qkv_bias',
  'id2label',
  'label2id',
  'num_labels',
  'architectures',
  'model_type',
  'tie_word_embeddings',
  'problem_type',
  'position_embedding_type',
  'torch_dtype',
  'constructor',
  'auto_map',
];

/** Rewrites the safetensors header of `file` with one entry's dtype, shape or offsets replaced, or the length lied. */
function mutateHeader(file: string, rand: Rand): string {
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const keys = Object.keys(header).filter((k) => k !== '__metadata__');
  const key = pick(rand, keys);
  const kind = rand();
  let what: string;
  if (kind < 0.2) {
    const len = pick(rand, [0, 1, n - 1, n + 1, n + 8, 2 ** 31, 2 ** 40, bytes.length]);
    const out = Buffer.from(bytes);
    out.writeBigUInt64LE(BigInt(len), 0);
    fs.writeFileSync(file, out);
    return `header length ${len}`;
  } else if (kind < 0.4) {
    header[key].dtype = pick(rand, ['F32', 'F16', 'BF16', 'F64', 'I64', 'U8', 'Q4', '', 7, null]);
    what = `${key} dtype ${header[key].dtype}`;
  } else if (kind < 0.6) {
    header[key].shape = pick(rand, [[], [0], [1], [-1], [2 ** 31, 2 ** 31], [1.5], 'x', [1, 2, 3, 4, 5, 6, 7, 8]]);
    what = `${key} shape ${JSON.stringify(header[key].shape)}`;
  } else if (kind < 0.8) {
    const [b, e] = header[key].data_offsets;
    header[key].data_offsets = pick(rand, [[e, b], [b, e + 4], [b + 4, e + 4], [0, e - b], [b, 2 ** 53], [-4, e], [b]]);
    what = `${key} offsets ${JSON.stringify(header[key].data_offsets)}`;
  } else {
    header.__metadata__ = pick(rand, [{ format: 1 }, 'pt', null, { format: 'pt', extra: { nested: true } }]);
    what = `__metadata__ ${JSON.stringify(header.__metadata__)}`;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8) json += ' ';
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(json), bytes.subarray(8 + n)]));
  return what;
}

function mutateIndex(file: string, rand: Rand): string {
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  const keys = Object.keys(j.weight_map);
  const key = pick(rand, keys);
  const value = pick(rand, ['../model-00001-of-00002.safetensors', '/etc/passwd', 'model-00001-of-00002.safetensors', 'missing.safetensors', '', 5, null]);
  if (rand() < 0.2) delete j.weight_map[key];
  else if (rand() < 0.1) j.weight_map = pick(rand, [[], 'x', null, { __proto__: 'x' }]);
  else j.weight_map[key] = value;
  fs.writeFileSync(file, JSON.stringify(j));
  return `weight_map[${key}] = ${JSON.stringify(value)}`;
}

const PATTERNS = ['(a+)+$', '(\\w+\\s?)*$', '(a|aa)+b', '\\s+(?!\\S)', '(a)\\1', '[', '\\p{L}+|\\s+', '.*'];

function mutateTokenizer(file: string, rand: Rand): string {
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  const kind = rand();
  if (kind < 0.35) {
    const pattern = pick(rand, PATTERNS);
    j.pre_tokenizer = { type: 'Split', pattern: { Regex: pattern }, behavior: pick(rand, ['Isolated', 'Removed', 'MergedWithNext']), invert: rand() < 0.3 };
    return `Split ${pattern}`;
  } else if (kind < 0.5) {
    j.normalizer = { type: 'Replace', pattern: { Regex: pick(rand, PATTERNS) }, content: ' ' };
    return `Replace ${j.normalizer.pattern.Regex}`;
  } else if (kind < 0.7) {
    const field = pick(rand, ['unk_token', 'continuing_subword_prefix', 'max_input_chars_per_word', 'vocab', 'type']);
    j.model[field] = pick(rand, VALUES);
    return `model.${field}`;
  } else if (kind < 0.85) {
    j[pick(rand, ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder', 'added_tokens'])] = pick(rand, VALUES);
    return 'a step replaced';
  }
  fs.writeFileSync(file, flipBytes(Buffer.from(JSON.stringify(j)), rand));
  return 'byte flips';
}

function mutateJsonl(file: string, rand: Rand): string {
  const lines = [
    '{"text": 5, "label": 0}',
    '{"text": "a", "label": "constructor"}',
    '{"text": "a", "label": "__proto__"}',
    '{"text": "a", "label": -1}',
    '{"text": "a", "label": 1e308}',
    '{"text": "a", "text_pair": 7, "label": 0}',
    `{"text": "${'word '.repeat(2000)}", "label": 1}`,
    '[1, 2]',
    'null',
    '{"text": "a"}',
    '',
  ];
  if (rand() < 0.5) {
    fs.appendFileSync(file, `${pick(rand, lines)}\n`);
    return 'odd line';
  }
  return mutateBytes(file, rand);
}

/** A hostile file kind in place of `file`. */
function replaceWithSpecial(file: string, kind: string, secret: string): void {
  fs.rmSync(file, { recursive: true, force: true });
  if (kind === 'link-out') fs.symlinkSync(secret, file);
  else if (kind === 'dev-zero') fs.symlinkSync('/dev/zero', file);
  else if (kind === 'dev-null') fs.symlinkSync('/dev/null', file);
  else if (kind === 'fifo') execFileSync('mkfifo', [file]);
  else if (kind === 'folder') fs.mkdirSync(file);
  else if (kind === 'broken-link') fs.symlinkSync(path.join(path.dirname(file), 'nothing-here'), file);
  else if (kind === 'loop') {
    fs.symlinkSync(`${file}.b`, file);
    fs.symlinkSync(file, `${file}.b`);
  }
}

interface Case {
  fixture: string;
  what: string;
  mutate: (dir: string, rand: Rand) => string;
  /** Evaluate on data when the model loads (text for BERT, the image folder for ViT). */
  data?: 'text' | 'images';
}

function cases(): Case[] {
  const out: Case[] = [];
  const rep = (n: number, c: Case) => {
    for (let i = 0; i < n; i++) out.push(c);
  };
  for (const fixture of ['bert-tiny-cls-a', 'vit-fmnist-s11']) {
    const data = fixture.startsWith('bert') ? ('text' as const) : ('images' as const);
    rep(40, { fixture, what: 'config field', data, mutate: (d, r) => setJsonField(path.join(d, 'config.json'), r, CONFIG_FIELDS) });
    rep(15, { fixture, what: 'config bytes', mutate: (d, r) => mutateBytes(path.join(d, 'config.json'), r) });
    rep(30, { fixture, what: 'safetensors header', data, mutate: (d, r) => mutateHeader(path.join(d, 'model.safetensors'), r) });
    rep(12, { fixture, what: 'safetensors bytes', mutate: (d, r) => mutateBytes(path.join(d, 'model.safetensors'), r, 512) });
  }
  const sharded = 'vit-tiny-rgb-bf16-sharded';
  rep(20, { fixture: sharded, what: 'index', mutate: (d, r) => mutateIndex(path.join(d, 'model.safetensors.index.json'), r) });
  rep(8, { fixture: sharded, what: 'index bytes', mutate: (d, r) => mutateBytes(path.join(d, 'model.safetensors.index.json'), r) });
  rep(12, {
    fixture: sharded,
    what: 'shard header',
    mutate: (d, r) => mutateHeader(path.join(d, `model-0000${1 + Math.floor(r() * 2)}-of-00002.safetensors`), r),
  });
  rep(30, { fixture: 'bert-tiny-cls-a', what: 'tokenizer.json', data: 'text', mutate: (d, r) => mutateTokenizer(path.join(d, 'tokenizer.json'), r) });
  rep(8, {
    fixture: 'bert-tiny-cls-a',
    what: 'tokenizer_config.json',
    data: 'text',
    mutate: (d, r) => setJsonField(path.join(d, 'tokenizer_config.json'), r, ['cls_token', 'sep_token', 'pad_token', 'model_max_length', 'do_lower_case']),
  });
  rep(20, { fixture: 'bert-tiny-cls-a', what: '.jsonl', data: 'text', mutate: (d, r) => mutateJsonl(path.join(d, 'd.jsonl'), r) });
  rep(16, {
    fixture: 'vit-fmnist-s11',
    what: 'preprocessor_config.json',
    data: 'images',
    mutate: (d, r) => setJsonField(path.join(d, 'preprocessor_config.json'), r, ['size', 'image_mean', 'image_std', 'rescale_factor', 'resample', 'do_resize']),
  });
  rep(16, {
    fixture: 'vit-fmnist-s11',
    what: 'image bytes',
    data: 'images',
    mutate: (d, r) => mutateBytes(path.join(d, 'images', pick(r, ['a/a0.png', 'a/a1.jpg', 'c/c0.png'])), r, 64),
  });
  // Links, FIFOs, devices, folders and loops in place of each file a reader opens.
  const targets: [string, string, 'text' | 'images' | undefined][] = [
    ['bert-tiny-cls-a', 'config.json', undefined],
    ['bert-tiny-cls-a', 'model.safetensors', undefined],
    ['bert-tiny-cls-a', 'tokenizer.json', 'text'],
    ['bert-tiny-cls-a', 'tokenizer_config.json', 'text'],
    ['bert-tiny-cls-a', 'd.jsonl', 'text'],
    [sharded, 'model.safetensors.index.json', undefined],
    [sharded, 'model-00002-of-00002.safetensors', undefined],
    ['vit-fmnist-s11', 'preprocessor_config.json', 'images'],
    ['vit-fmnist-s11', 'images/a/a0.png', 'images'],
    ['vit-fmnist-s11', 'images/c', 'images'],
  ];
  for (const [fixture, file, data] of targets)
    for (const kind of ['link-out', 'dev-zero', 'dev-null', 'fifo', 'folder', 'broken-link', 'loop'])
      out.push({
        fixture,
        what: `${file} as ${kind}`,
        data,
        mutate: (d) => (replaceWithSpecial(path.join(d, file), kind, path.join(path.dirname(d), 'secret.txt')), kind),
      });
  return out;
}

/** A fresh copy of the fixture with data next to it: d.jsonl (BERT) or images/ (ViT), and a secret outside it. */
function prepare(fixture: string, root: string): string {
  const dir = path.join(root, fixture);
  fs.cpSync(hfDir(fixture), dir, { recursive: true });
  fs.writeFileSync(path.join(root, 'secret.txt'), 'trust-read-secret');
  if (fixture.startsWith('bert')) fs.writeFileSync(path.join(dir, 'd.jsonl'), JSONL);
  else fs.cpSync(hfDir('images'), path.join(dir, 'images'), { recursive: true });
  return dir;
}

async function outcome(run: () => Promise<unknown>): Promise<{ exit: number; code?: string; message?: string }> {
  try {
    await run();
    return { exit: 0 };
  } catch (err) {
    const info = toErrorInfo(err);
    return { exit: info.code === 'BAD_USAGE' ? 2 : 1, code: info.code, message: info.message };
  }
}

test('fuzz: ~400 hostile Hugging Face folders, data and special files through inspect and evaluate', async (t) => {
  const rand = seededRandom(25_001);
  const all = cases();
  const counts: Record<string, number> = { ok: 0, failed: 0 };
  for (const [i, c] of all.entries()) {
    const root = tempDir('otfuse-fuzz-hf-');
    const dir = prepare(c.fixture, root);
    const detail = c.mutate(dir, rand);
    const label = `case ${i} ${c.fixture} ${c.what} (${detail})`;
    const before = snapshot(root);
    const o = await outcome(async () => {
      await engine.inspect({ model: dir, provider: 'cpu' });
      if (c.data === 'text') await engine.evaluate({ model: dir, data: path.join(dir, 'd.jsonl'), provider: 'cpu', limit: 8 });
      if (c.data === 'images') await engine.evaluate({ model: dir, data: path.join(dir, 'images'), provider: 'cpu', limit: 8 });
    });
    assert.ok([0, 1, 2].includes(o.exit), label);
    if (o.code) {
      assert.ok(ERROR_CODES.includes(o.code as never), `${label}: undocumented code ${o.code}`);
      assert.equal(hasStackTrace(o.message ?? ''), false, `${label}: ${o.message}`);
      assert.notEqual(o.code, 'INTERNAL', `${label}: INTERNAL error on a hostile input: ${o.message}`);
      assert.ok(!(o.message ?? '').includes('trust-read-secret'), `${label}: the error quotes a file outside the folder`);
    }
    assert.ok(process.memoryUsage().rss < RSS_LIMIT, `${label}: RSS ${process.memoryUsage().rss}`);
    assert.deepEqual(snapshot(root), before, `${label}: an input changed`);
    counts[o.exit === 0 ? 'ok' : 'failed']++;
    counts[o.code ?? 'none'] = (counts[o.code ?? 'none'] ?? 0) + 1;
    fs.rmSync(root, { recursive: true, force: true });
  }
  t.diagnostic(`${all.length} cases: ${JSON.stringify(counts)}`);
  assert.ok(all.length >= 300, `${all.length} cases`);
  // The mutations must reach the error paths, and some must still load.
  assert.ok(counts.failed >= all.length / 2 && counts.ok >= 20, JSON.stringify(counts));
});

test('fuzz through the real CLI: FIFOs and links in HF folders exit 1 or 2 at once, without a stack trace', () => {
  for (const [i, [file, kind]] of (
    [
      ['config.json', 'fifo'],
      ['model.safetensors', 'fifo'],
      ['tokenizer.json', 'fifo'],
      ['config.json', 'dev-zero'],
      ['model.safetensors', 'link-out'],
      ['tokenizer.json', 'loop'],
    ] as const
  ).entries()) {
    const root = tempDir('otfuse-fuzz-hf-');
    const dir = prepare('bert-tiny-cls-a', root);
    replaceWithSpecial(path.join(dir, file), kind, path.join(root, 'secret.txt'));
    const r = runCliWatched(['eval', dir, '--data', path.join(dir, 'd.jsonl'), '--provider', 'cpu', '--json'], { timeoutMs: 30_000 });
    const label = `cli case ${i}: ${file} as ${kind}`;
    assert.equal(r.timedOut, false, `${label}: hung`);
    assert.ok(r.code === 1 || r.code === 2, `${label}: exit ${r.code}\n${r.stderr}`);
    assert.equal(hasStackTrace(r.stderr), false, `${label}: ${r.stderr}`);
    assert.ok(r.peakRssMiB < 1024, `${label}: peak ${r.peakRssMiB} MiB`);
    assert.ok(ERROR_CODES.includes(JSON.parse(r.stdout).error.code), label);
    fs.rmSync(root, { recursive: true, force: true });
  }
});
