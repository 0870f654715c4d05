// Issue 25, the read side: nothing in an untrusted workspace makes otfuse read outside a folder, hang, grow without
// bound, or run a pattern for minutes; config values are own properties in documented ranges; exports carry no
// local paths, no remote code and no silently dropped layers; error text never repeats the bytes it could not parse.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { engine } from '../../worker/api';
import { OtfuseError } from '../../worker/errors';
import { importHf } from '../../worker/hf';
import { readCheckpoint } from '../../worker/hf/checkpoint';
import { exportHf } from '../../worker/hf/export';
import { encodeSafetensorsRaw, parseSafetensors } from '../../worker/hf/safetensors';
import { Tokenizer } from '@huggingface/tokenizers';
import { loadTokenizer } from '../../worker/data/tokenizer';
import { loadModel } from '../../worker/onnx/model';
import { stampLineage } from '../../worker/runs/lineage';
import { READ_LIMITS } from '../../worker/io/read';
import { tempDir } from '../helpers';
import { hfDir } from '../hf/helpers';
import { runCliWatched } from './helpers';

/** A private copy of a fixture folder (links and FIFOs are made in copies, never in the fixtures). */
function copy(name: string): string {
  const dir = path.join(tempDir(), name);
  fs.cpSync(hfDir(name), dir, { recursive: true });
  return dir;
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
  const file = path.join(dir, 'config.json');
  const c = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(c);
  fs.writeFileSync(file, JSON.stringify(c));
}

const refusedWith = (code: string, re: RegExp) => (err: unknown) => {
  assert.ok(err instanceof OtfuseError, String(err));
  assert.equal(err.code, code, err.message);
  assert.match(err.message, re);
  return true;
};

/** A file outside every model folder that a hostile folder links to (a stand-in for ~/.ssh/id_rsa). */
function secretFile(): { file: string; text: string } {
  const text = '-----BEGIN OPENSSH PRIVATE KEY----- trust-read-secret-7f3a';
  const file = path.join(tempDir(), 'id_rsa');
  fs.writeFileSync(file, text);
  return { file, text };
}

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).flatMap((e) => (e.isFile() ? [path.join(e.parentPath ?? e.path, e.name)] : []));
}

// Item 1 — exfiltration through export --like.
test('export --like never copies a file through a link that leaves the folder, and says what it skipped', async () => {
  const secret = secretFile();
  const like = copy('bert-tiny-cls-a');
  for (const name of ['tokenizer.json', 'special_tokens_map.json']) {
    fs.rmSync(path.join(like, name));
    fs.symlinkSync(secret.file, path.join(like, name));
  }
  fs.symlinkSync(secret.file, path.join(like, 'README.md'));
  const out = path.join(tempDir(), 'export');
  const r = await exportHf({ model: hfDir('bert-tiny-cls-a'), like, output: out });
  assert.deepEqual(r.skipped.map((s) => s.name).sort(), ['special_tokens_map.json', 'tokenizer.json']);
  assert.ok(r.skipped.every((s) => /outside the --like folder/.test(s.why)));
  for (const f of filesUnder(out)) assert.ok(!fs.readFileSync(f, 'utf8').includes(secret.text), `${path.basename(f)} holds the linked file's bytes`);
  assert.ok(fs.existsSync(path.join(out, 'tokenizer_config.json')), 'regular files are still copied');
  // The CLI says it.
  const cliOut = path.join(tempDir(), 'export-cli');
  const cli = runCliWatched(['export', hfDir('bert-tiny-cls-a'), '--like', like, '-o', cliOut]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /skipped\s+tokenizer\.json: a link to a file outside the --like folder/);
});

test('model folder files that link out of the folder are refused, naming the file; a Hugging Face cache snapshot may link to its blobs', () => {
  const secret = secretFile();
  const dir = copy('bert-tiny-cls-a');
  const outside = path.join(tempDir(), 'model.safetensors');
  fs.renameSync(path.join(dir, 'model.safetensors'), outside);
  fs.symlinkSync(outside, path.join(dir, 'model.safetensors'));
  assert.throws(() => readCheckpoint(dir), refusedWith('BAD_MODEL', /model\.safetensors: the safetensors file is a link to a file outside its folder/));
  const cfg = copy('bert-tiny-cls-a');
  fs.rmSync(path.join(cfg, 'config.json'));
  fs.symlinkSync(secret.file, path.join(cfg, 'config.json'));
  assert.throws(() => readCheckpoint(cfg), refusedWith('BAD_MODEL', /config\.json: the config\.json is a link to a file outside/));
  const tok = copy('bert-tiny-cls-a');
  fs.rmSync(path.join(tok, 'tokenizer.json'));
  fs.symlinkSync(secret.file, path.join(tok, 'tokenizer.json'));
  assert.throws(() => loadTokenizer(tok), refusedWith('BAD_DATA', /tokenizer\.json is a link to a file outside/));
  // The cache layout: models--org--name/snapshots/<rev>/<file> → ../../blobs/<sha>.
  const repo = path.join(tempDir(), 'models--org--bert-tiny');
  const snap = path.join(repo, 'snapshots', 'abc123');
  fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
  fs.mkdirSync(snap, { recursive: true });
  for (const f of fs.readdirSync(hfDir('bert-tiny-cls-a'))) {
    fs.copyFileSync(path.join(hfDir('bert-tiny-cls-a'), f), path.join(repo, 'blobs', `blob-${f}`));
    fs.symlinkSync(path.join('..', '..', 'blobs', `blob-${f}`), path.join(snap, f));
  }
  assert.equal(readCheckpoint(snap).tensors.size, readCheckpoint(hfDir('bert-tiny-cls-a')).tensors.size);
});

test('an image that links out of the image folder is refused by name', async () => {
  const root = path.join(tempDir(), 'images');
  fs.cpSync(hfDir('images'), root, { recursive: true });
  const outside = path.join(tempDir(), 'x.png');
  fs.copyFileSync(path.join(root, 'a', 'a0.png'), outside);
  fs.symlinkSync(outside, path.join(root, 'c', 'c9.png'));
  await assert.rejects(
    engine.evaluate({ model: hfDir('vit-fmnist-s11'), data: root }),
    refusedWith('BAD_DATA', /c9\.png: the image is a link to a file outside its folder/),
  );
});

// Item 2 — FIFOs, devices, huge declared sizes. FIFOs go through the CLI so a hang is a timeout, not a stuck test.
test('a FIFO or /dev/zero in place of any HF or data file is refused at once, not read', () => {
  const cases: [string, string, (dir: string) => string[]][] = [
    ['bert-tiny-cls-a', 'config.json', (d) => ['inspect', d]],
    ['bert-tiny-cls-a', 'model.safetensors', (d) => ['inspect', d]],
    ['vit-tiny-rgb-bf16-sharded', 'model.safetensors.index.json', (d) => ['inspect', d]],
    ['vit-tiny-rgb-bf16-sharded', 'model-00002-of-00002.safetensors', (d) => ['inspect', d]],
    ['bert-tiny-cls-a', 'tokenizer.json', (d) => ['eval', d, '--data', path.join(d, 'd.jsonl')]],
    ['bert-tiny-cls-a', 'd.jsonl', (d) => ['eval', d, '--data', path.join(d, 'd.jsonl')]],
  ];
  for (const [fixture, name, args] of cases) {
    for (const kind of ['fifo', 'zero'] as const) {
      const dir = copy(fixture);
      fs.writeFileSync(path.join(dir, 'd.jsonl'), '{"text": "good movie", "label": 2}\n');
      fs.rmSync(path.join(dir, name));
      if (kind === 'fifo') execFileSync('mkfifo', [path.join(dir, name)]);
      else fs.symlinkSync('/dev/zero', path.join(dir, name));
      const r = runCliWatched([...args(dir), '--json'], { timeoutMs: 30_000 });
      const label = `${fixture}/${name} as ${kind}`;
      assert.equal(r.timedOut, false, `${label}: hung`);
      assert.ok(r.code === 1 || r.code === 2, `${label}: exit ${r.code} ${r.stderr}`);
      assert.ok(r.peakRssMiB < 600, `${label}: peak ${r.peakRssMiB} MiB`);
      const err = JSON.parse(r.stdout).error;
      assert.ok(err.message.includes(name), `${label}: ${err.message}`);
      assert.match(err.message, /FIFO|a device|outside its folder/, label);
    }
  }
});

test('a safetensors header declaring more than the limit, and an oversized config.json, are refused before they are read', () => {
  const dir = copy('bert-tiny-cls-a');
  const st = path.join(dir, 'model.safetensors');
  const n = READ_LIMITS.safetensorsHeader + 8;
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(n));
  fs.writeFileSync(st, head);
  fs.truncateSync(st, 8 + n + 64); // sparse: the header's bytes exist, all zero
  assert.throws(() => readCheckpoint(dir), refusedWith('BAD_MODEL', new RegExp(`header length ${n} .* exceeds ${READ_LIMITS.safetensorsHeader}`)));
  const big = copy('bert-tiny-cls-a');
  const cfg = path.join(big, 'config.json');
  fs.truncateSync(cfg, READ_LIMITS.json + 1);
  assert.throws(() => readCheckpoint(big), refusedWith('BAD_MODEL', new RegExp(`${READ_LIMITS.json + 1} bytes, more than the ${READ_LIMITS.json}`)));
});

// Item 4 — ReDoS in tokenizer.json patterns.
function tokenizerWithSplit(pattern: string): string {
  const dir = copy('bert-tiny-cls-a');
  const file = path.join(dir, 'tokenizer.json');
  const tok = JSON.parse(fs.readFileSync(file, 'utf8'));
  tok.pre_tokenizer = {
    type: 'Sequence',
    pretokenizers: [{ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false }, { type: 'BertPreTokenizer' }],
  };
  fs.writeFileSync(file, JSON.stringify(tok));
  return dir;
}

test('a catastrophic tokenizer.json pattern runs in linear time (RE2), with the ids the backtracking engine gives on short input', { timeout: 60_000 }, () => {
  const tok = loadTokenizer(tokenizerWithSplit('(a+)+$'));
  // V8's backtracking needs ~2^n steps on "aaa…a!" (n = 30: minutes); RE2 is linear.
  // The pattern matches nothing there, so the ids are those of the folder's own tokenizer.
  const text = `${'a'.repeat(5000)}! good movie`;
  assert.deepEqual(tok.encode(text, undefined, 64).ids, loadTokenizer(hfDir('bert-tiny-cls-a')).encode(text, undefined, 64).ids);
  // A pattern on input where backtracking is cheap: the ids equal those of the library running its own RegExp.
  const plain = tokenizerWithSplit('\\s+|[a-z]+|\\p{L}+');
  const viaRe2 = loadTokenizer(plain);
  const native = new Tokenizer(JSON.parse(fs.readFileSync(path.join(plain, 'tokenizer.json'), 'utf8')), {});
  const words = ['good movie', 'bad  acting, great plot!', 'x', '', 'ünïcode wörds 😀 here', 'abc123def  ghi', 'a,b,,c'];
  for (const w of words) assert.deepEqual(viaRe2.encode(w, undefined, 64).ids.slice(1, -1), native.encode(w, { add_special_tokens: false }).ids, w);
});

test('a tokenizer pattern that needs backtracking (lookahead, backreference) is refused naming tokenizer.json', () => {
  for (const pattern of ['\\s+(?!\\S)', '(a)\\1']) {
    assert.throws(
      () => loadTokenizer(tokenizerWithSplit(pattern)),
      refusedWith('UNSUPPORTED', /tokenizer\.json: the pattern at pre_tokenizer\.pretokenizers\[0\]\.pattern .* linear time only/),
    );
  }
  // A pattern RE2 could run but whose compilation alone would take long (a 1 MB pattern: seconds) is refused by size.
  assert.throws(() => loadTokenizer(tokenizerWithSplit('x'.repeat(5000))), refusedWith('UNSUPPORTED', /5000 characters, more than the 4096 accepted/));
});

// Item 5 — config values: own properties, ranges, errors naming file and field.
test('config.json: prototype names and out-of-range numbers are refused, naming config.json and the field', () => {
  const cases: [string, unknown, string, RegExp][] = [
    ['hidden_act', 'constructor', 'UNSUPPORTED', /field 'hidden_act': 'constructor' is not supported/],
    ['hidden_act', 'toString', 'UNSUPPORTED', /field 'hidden_act'/],
    ['layer_norm_eps', 1e308, 'BAD_MODEL', /field 'layer_norm_eps' must be a number from 1e-30 to 0\.1, got 1e\+308/],
    ['layer_norm_eps', 0, 'BAD_MODEL', /field 'layer_norm_eps'/],
    ['num_attention_heads', 0, 'BAD_MODEL', /field 'num_attention_heads' must be an integer from 1/],
    ['num_hidden_layers', 1e9, 'BAD_MODEL', /field 'num_hidden_layers' must be an integer from 1 to 1024/],
    ['vocab_size', 2 ** 40, 'BAD_MODEL', /field 'vocab_size'/],
    ['max_position_embeddings', -1, 'BAD_MODEL', /field 'max_position_embeddings'/],
    ['type_vocab_size', 1.5, 'BAD_MODEL', /field 'type_vocab_size'/],
    ['num_labels', 10 ** 7, 'BAD_MODEL', /'num_labels'/],
  ];
  for (const [field, value, code, re] of cases) {
    const dir = copy('bert-tiny-cls-a');
    editConfig(dir, (c) => {
      c[field] = value;
      if (field === 'num_labels') delete c.id2label;
    });
    assert.throws(() => readCheckpoint(dir), refusedWith(code, new RegExp(`config\\.json: .*${re.source}`)), `${field}: ${String(value)}`);
  }
});

// Item 6 — no local paths in what users share.
test('fused.onnx metadata and the exported model card hold file names and sha256, never absolute local paths', async () => {
  const home = '/home/alice/projects/secret-client';
  const model = importHf(hfDir('bert-tiny-cls-a'));
  stampLineage(model, {
    version: '0.0.0',
    kind: 'fused',
    parents: [
      { file: `${home}/a/model.onnx`, sha256: 'a'.repeat(64) },
      { file: `${home}/b/model.onnx`, sha256: 'b'.repeat(64) },
    ],
    anchor: `${home}/a/model.onnx`,
    evalData: `${home}/data/test.npz`,
    run: `${home}/.otfuse/runs/r1`,
  });
  const meta = model.summary().metadata ?? {};
  const tmp = tempDir();
  const fused = path.join(tmp, 'fused.onnx');
  model.save(fused);
  for (const [k, v] of Object.entries(loadModel(fused).summary().metadata ?? {})) {
    assert.ok(!v.includes(home) && !v.includes(path.dirname(hfDir('x'))), `metadata ${k} = ${v}`);
  }
  assert.match(meta['otfuse.parents'], /"file":"a\/model\.onnx","sha256":"a{64}"\},\{"file":"b\/model\.onnx"/);
  assert.equal(meta['otfuse.anchor'], 'a/model.onnx');
  // The card of an export from a run folder.
  fs.writeFileSync(
    path.join(tmp, 'run.json'),
    JSON.stringify({ models: [`${home}/a`, `${home}/b`], anchor: `${home}/a`, recipe: { solver: 'sinkhorn' }, metrics: [] }),
  );
  const out = path.join(tmp, 'export');
  // Through the API: it gives the export the run's facts for the card (worker/jobs/card.ts).
  await engine.exportHf({ model: fused, like: hfDir('bert-tiny-cls-a'), output: out });
  const card = fs.readFileSync(path.join(out, 'README.md'), 'utf8');
  assert.ok(!card.includes(home) && !card.includes(tmp) && !card.includes(hfDir('')), card);
  // Two parents of the same file name are told apart by their folder, never by their absolute path.
  assert.match(card, /- `a\/model\.onnx` \(anchor[^\n]*\n- `b\/model\.onnx` — sha256/);
});

// Item 9 — a layer-count mismatch in export --like.
test('export --like a folder with another number of layers is a MISMATCH, not silently dropped layers', async () => {
  const one = copy('bert-tiny-cls-a');
  const st = path.join(one, 'model.safetensors');
  const parsed = parseSafetensors(fs.readFileSync(st), st);
  fs.writeFileSync(
    st,
    encodeSafetensorsRaw(
      parsed.entries.filter((e) => !e.key.includes('encoder.layer.1.')),
      parsed.metadata,
    ),
  );
  editConfig(one, (c) => (c.num_hidden_layers = 1));
  assert.equal(readCheckpoint(one).config.layers, 1);
  const out = path.join(tempDir(), 'out');
  await assert.rejects(
    exportHf({ model: hfDir('bert-tiny-cls-a'), like: one, output: out }),
    refusedWith('MISMATCH', /the model has 2 encoder layers but the --like folder's config\.json has num_hidden_layers 1/),
  );
  assert.equal(fs.existsSync(out), false);
  await assert.rejects(exportHf({ model: one, like: hfDir('bert-tiny-cls-a'), output: out }), refusedWith('MISMATCH', /1 encoder layers/));
});

// Item 13 — error text and remote code.
test('errors never repeat the bytes of a file they could not parse', async () => {
  const passwd = 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n';
  const leaks = (msg: string) => /root:x|daemon|nologin/.test(msg);
  const cfg = copy('bert-tiny-cls-a');
  fs.writeFileSync(path.join(cfg, 'config.json'), passwd);
  assert.throws(
    () => readCheckpoint(cfg),
    (e: OtfuseError) => e.code === 'BAD_MODEL' && /config\.json is not valid JSON/.test(e.message) && !leaks(e.message),
  );
  const tok = copy('bert-tiny-cls-a');
  fs.writeFileSync(path.join(tok, 'tokenizer.json'), passwd);
  assert.throws(
    () => loadTokenizer(tok),
    (e: OtfuseError) => e.code === 'BAD_DATA' && !leaks(e.message),
  );
  const data = path.join(tempDir(), 'd.jsonl');
  fs.writeFileSync(data, passwd);
  await assert.rejects(engine.evaluate({ model: hfDir('bert-tiny-cls-a'), data }), (e: OtfuseError) => e.code === 'BAD_DATA' && !leaks(e.message));
  const csv = path.join(tempDir(), 'd.csv');
  fs.writeFileSync(csv, passwd);
  await assert.rejects(engine.evaluate({ model: hfDir('bert-tiny-cls-a'), data: csv }), (e: OtfuseError) => e.code === 'BAD_DATA' && !leaks(e.message));
  const st = copy('bert-tiny-cls-a');
  const header = Buffer.from(`{"${passwd.replace(/\n/g, '')}": {"dtype": "${passwd.slice(0, 30)}", "shape": [1], "data_offsets": [0, 4]}}`);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(header.length));
  fs.writeFileSync(path.join(st, 'model.safetensors'), Buffer.concat([head, header, Buffer.alloc(4)]));
  assert.throws(
    () => readCheckpoint(st),
    (e: OtfuseError) => e.code === 'BAD_MODEL' && /unknown dtype/.test(e.message) && !leaks(e.message),
  );
});

test('auto_map (remote code) in the --like config is dropped from the export and reported', async () => {
  const like = copy('bert-tiny-cls-a');
  editConfig(like, (c) => (c.auto_map = { AutoModel: 'modeling_evil.EvilModel' }));
  const out = path.join(tempDir(), 'out');
  const r = await exportHf({ model: hfDir('bert-tiny-cls-a'), like, output: out });
  const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.equal(Object.hasOwn(config, 'auto_map'), false);
  assert.equal(config.hidden_size, 32);
  assert.deepEqual(
    r.skipped.map((s) => s.name),
    ["config.json field 'auto_map'"],
  );
});
