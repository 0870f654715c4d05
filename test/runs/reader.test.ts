// The one run.json reader (worker/runs/reader.ts): an old run.json (written by the engine before metric roles)
// is migrated on read, hostile ones (wrong types, 60 MB, a FIFO) become unreadable entries with the reason and
// never throw, and the async reader refuses an oversized file by its size without opening it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, runCli, tempDir } from '../helpers';
import { listRuns, readRun, writeRecord } from '../../worker/runs/store';
import { listRunFilesAsync, readRunFileAsync, RUN_FILE_MAX_BYTES } from '../../worker/runs/reader';
import { migrateRunRecord, roleFromLabel } from '../../worker/runs/migrate';
import { demoVerdict } from '../../worker/cli/verdict';
import { runSchemaText } from '../../worker/runs/schema';

const OLD = path.join(ROOT, 'test', 'fixtures', 'runs', 'v1-run');

function runWith(content: string | Buffer, root = tempDir(), name = 'r'): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'run.json'), content);
  return dir;
}

test('an old run.json (labels only) opens: roles derived once, the finetune becomes the history', () => {
  const entry = readRun(OLD);
  assert.equal(entry.error, undefined);
  const r = entry.record!;
  assert.deepEqual(
    r.metrics.map((m) => [m.role, m.start ?? '', m.model ?? '', m.seeds ? 's' : '']),
    [
      ['anchor', '', 0, ''],
      ['parent', '', 1, ''],
      ['vanilla', '', '', ''],
      ['fused', '', '', ''],
      ['finetuned', 'fused', '', ''],
      ['ensemble', '', '', ''],
      ['finetuned', 'fused', '', 's'],
      ['baseline', 'anchor', 0, 's'],
      ['baseline', 'parent', 1, 's'],
      ['baseline', 'vanilla', '', 's'],
      ['baseline', 'anchor', 0, ''],
    ],
  );
  assert.equal(r.schemaVersion, 2);
  assert.deepEqual(r.finetunes, [r.finetune]);
  // The CLI's verdict reads roles, so it works on the migrated record: fused + finetune vs the better tuned parent.
  const verdict = demoVerdict(r);
  assert.match(verdict, /fused \+ finetune 43\.00 %/);
  assert.match(verdict, /same finetune 84\.00 %: -41\.00 points/);
  // Migrating an already migrated record changes nothing.
  const raw = JSON.parse(fs.readFileSync(path.join(OLD, 'run.json'), 'utf8'));
  const once = migrateRunRecord(raw, OLD, new Date(0));
  assert.deepEqual(migrateRunRecord(once, OLD, new Date(0)), once);
  const copy = tempDir();
  writeRecord(copy, r);
  assert.deepEqual(readRun(copy).record, r);
});

test('run.json with wrong types is an unreadable run with the reason, never an exception', () => {
  const root = tempDir();
  const good = JSON.parse(fs.readFileSync(path.join(OLD, 'run.json'), 'utf8'));
  const cases: [unknown, RegExp][] = [
    [{ ...good, metrics: 'x' }, /metrics must be array/],
    [{ ...good, metrics: [{ label: 5 }] }, /metrics\.0 must have required property 'role'/],
    [{ ...good, metrics: [{ label: 5, role: 'fused' }] }, /metrics\.0\.label must be string/],
    [{ ...good, metrics: [null] }, /metrics\.0 must be object/],
    [{ ...good, metrics: [{ label: 'ot', role: 'winner' }] }, /metrics\.0\.role must be equal to one of the allowed values/],
    [{ ...good, layers: [{ ...good.layers[0], rows: '3' }] }, /layers\.0\.rows must be integer/],
    [{ ...good, status: 7 }, /status must be equal to one of the allowed values/],
    [{ ...good, models: { 0: 'a' } }, /models must be array/],
    [{ ...good, versions: { otfuse: 1 } }, /versions\.otfuse must be string/],
    [{ ...good, finetune: { ...good.finetune, history: 'long' } }, /finetune\.history must be array/],
    [{ ...good, merge: { method: 'ties', params: null } }, /merge\.params must be object/],
    [{ ...good, sharedBase: { shared: true, message: 'x', base: 7 } }, /sharedBase\.base must be string/],
    [[], /not an object/],
    [null, /not an object/],
    ['text', /not an object/],
  ];
  cases.forEach(([content, reason], k) => {
    const dir = runWith(JSON.stringify(content), root, `r${k}`);
    const entry = readRun(dir);
    assert.equal(entry.record, undefined, `case ${k}`);
    assert.match(entry.error!, reason, `case ${k}: ${entry.error}`);
  });
  runWith('{"id": ', root, 'broken');
  // A parse error names the position, never the file's bytes.
  const secret = runWith('-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n', tempDir());
  assert.equal(readRun(secret).error, 'run.json is not JSON (syntax error at byte 1)');
  const listed = listRuns(root);
  assert.equal(listed.length, cases.length + 1);
  assert.ok(listed.every((e) => e.error && !e.record));
});

test('a 60 MB run.json is refused by its size, without being opened; a FIFO does not hang', async () => {
  const root = tempDir();
  const big = runWith('', root, 'big');
  fs.truncateSync(path.join(big, 'run.json'), 60 * 2 ** 20); // sparse: 60 MB that read as zeros
  const opened: string[] = [];
  const open = fs.promises.open;
  fs.promises.open = ((file: fs.PathLike, ...rest: unknown[]) => {
    opened.push(String(file));
    return (open as (...a: unknown[]) => Promise<fs.promises.FileHandle>)(file, ...rest);
  }) as typeof fs.promises.open;
  try {
    const entry = await readRunFileAsync(big);
    assert.match(entry.error!, /run\.json is 60\.0 MiB, over the 4\.0 MiB limit: not read/);
    assert.deepEqual(opened, [], 'never opened');
  } finally {
    fs.promises.open = open;
  }
  assert.match(readRun(big).error!, new RegExp(`${60 * 2 ** 20} bytes, more than the ${RUN_FILE_MAX_BYTES}`));
  const fifo = path.join(root, 'fifo');
  fs.mkdirSync(fifo);
  execFileSync('mkfifo', [path.join(fifo, 'run.json')]);
  assert.match((await readRunFileAsync(fifo)).error!, /not a regular file/);
  assert.match(readRun(fifo).error!, /FIFO/);
  const ok = runWith(fs.readFileSync(path.join(OLD, 'run.json')), root, 'ok');
  const all = await listRunFilesAsync(root);
  assert.equal(all.length, 3);
  assert.equal(all.find((e) => e.dir === ok)!.record!.metrics.length, 11);
  assert.equal(all.filter((e) => e.error).length, 2);
});

test('run.schema.json is generated from worker/runs/schema.ts (node scripts/gen-run-schema.mjs)', () => {
  assert.equal(fs.readFileSync(path.join(ROOT, 'worker', 'runs', 'run.schema.json'), 'utf8'), runSchemaText());
});

test('what the engine writes fits the schema: an auto-tuned BERT run on text with baselines and a finetune, then a second finetune', async () => {
  const { engine } = await import('../../worker/api');
  const { finetuneRun } = await import('../../worker/runs/actions');
  const tmp = tempDir();
  const hf = (n: string) => path.join(ROOT, 'test', 'fixtures', 'hf', n);
  const words = ['the cat sat on the mat', 'i love this movie', 'a very bad dog', 'hello world', 'new york is big', 'that was not good'];
  const texts = (n: number, k: number) =>
    Array.from({ length: n }, (_, i) => JSON.stringify({ text: `${words[(i + k) % 6]} ${words[(i * 5 + k) % 6]}`, label: (i + k) % 3 })).join('\n');
  const [calib, evalData, train] = ['calib', 'eval', 'train'].map((n, k) => {
    const f = path.join(tmp, `${n}.jsonl`);
    fs.writeFileSync(f, texts(80 + 10 * k, k));
    return f;
  });
  const { runDir, record } = await engine.fuse({
    models: [hf('bert-tiny-cls-a'), hf('bert-tiny-cls-b')],
    data: calib,
    evalData,
    runsDir: path.join(tmp, 'runs'),
    autotune: { budgetSeconds: 3 },
    baselines: true,
    finetune: { data: train, maxSteps: 2 },
  });
  const entry = readRun(runDir);
  assert.equal(entry.error, undefined);
  assert.deepEqual(entry.record, JSON.parse(JSON.stringify(record)));
  assert.ok(record.autotune && record.finetune && record.metrics.some((m) => m.role === 'ensemble'));
  assert.equal(record.maxLength, 32, "the tokenizer's model_max_length");
  // A plain .jsonl: the tokenizer comes from the run's Hugging Face folders, as for the fuse.
  await finetuneRun({ runDir, data: train, maxSteps: 1, baseline: true }, {});
  const again = readRun(runDir);
  assert.equal(again.error, undefined);
  assert.equal(again.record!.finetunes!.length, 2);
});

test('the labels of every row kind the engine wrote before roles map to their role', () => {
  const models = ['/p/a.onnx', '/p/b.onnx'];
  const cases: [string, string | undefined, string][] = [
    ['a.onnx (anchor)', '/p/a.onnx', 'anchor|0|'],
    ['b.onnx', '/p/b.onnx', 'parent|1|'],
    ['vanilla', undefined, 'vanilla||'],
    ['ot', '/r/fused.onnx', 'fused||'],
    ['ot+finetune', '/r/finetuned.onnx', 'finetuned||fused'],
    ['ensemble (mean logits)', undefined, 'ensemble||'],
    ['ot+finetune (3 seeds)', undefined, 'finetuned||fused'],
    ['a.onnx+finetune (3 seeds)', undefined, 'baseline|0|anchor'],
    ['b.onnx+finetune (baseline run)', undefined, 'baseline|1|parent'],
    ['vanilla+finetune (3 seeds)', undefined, 'baseline||vanilla'],
    ['anchor+finetune', '/r/anchor-finetuned.onnx', 'baseline|0|anchor'],
    ['merged (ties)', undefined, 'merged||'],
    ['base.onnx (base)', '/p/base.onnx', 'base||'],
  ];
  for (const [label, file, want] of cases) {
    const r = roleFromLabel(label, file, models);
    assert.equal(`${r.role}|${r.model ?? ''}|${r.start ?? ''}`, want, label);
  }
});

test('what the engine writes fits the schema: a merge run (roles base and merged)', () => {
  const dir = tempDir();
  const MERGE = path.join(ROOT, 'test', 'fixtures', 'merge');
  const models = ['vit48_s10_ft_a.onnx', 'vit48_s10_ft_b.onnx'].map((f) => path.join(MERGE, f));
  const base = path.join(ROOT, 'test', 'fixtures', 'vit', 'vit48_s10.onnx');
  const evalData = path.join(ROOT, 'examples', 'data', 'fmnist-test-2k.json');
  const r = runCli(['merge', ...models, '--base', base, '--method', 'ties', '--runs-dir', dir, '--eval-data', evalData, '--eval-limit', '100']);
  assert.equal(r.code, 0, r.stderr);
  const [run] = listRuns(dir);
  assert.equal(run.error, undefined);
  assert.deepEqual(
    run.record!.metrics.map((m) => `${m.role}${m.model ?? ''}`),
    ['parent0', 'parent1', 'base', 'merged', 'ensemble'],
  );
  // A fuse of the same fine-tunes records its shared-base report, typed by the schema too.
  const fused = runCli([
    'fuse',
    ...models,
    '--data',
    path.join(ROOT, 'test', 'fixtures', 'vit', 'calib200.npz'),
    '--preset',
    'weights',
    '--no-eval',
    '--runs-dir',
    path.join(dir, 'f'),
  ]);
  assert.equal(fused.code, 0, fused.stderr);
  const [f] = listRuns(path.join(dir, 'f'));
  assert.equal(f.error, undefined);
  assert.equal(f.record!.sharedBase?.shared, true);
});
