// Seeded fuzzing (issue 15 acceptance): byte flips and truncations of a fixture model and of a fixture .npz (Hugging Face
// folders, their data and special files: fuzz-hf.test.ts).
// Every case must end with a documented error code (CLI exit 1 or 2) or succeed (exit 0), print no stack trace,
// keep memory bounded, and leave nothing half-written. Most cases run in-process through the engine API (the
// code path the CLI wraps); a sample runs through the real CLI to check exit codes and stderr.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { engine } from '../../worker/api';
import { ERROR_CODES, toErrorInfo } from '../../worker/errors';
import { loadModel } from '../../worker/onnx/model';
import { VIT, tempDir } from '../helpers';
import { seededRandom as mulberry32 } from '../../worker/random';
import { hasStackTrace, runCliWatched } from './helpers';
import { MapStore } from '../../worker/fusion/mapstore';
import { readStoredDetail } from '../../extension/storedDetail';

/** A mutated copy: 1–16 random byte flips, or a truncation, or flips inside the first 256 bytes (headers). */
function mutate(src: Buffer, rand: () => number): { bytes: Buffer; what: string } {
  const kind = rand();
  if (kind < 0.25) {
    const at = Math.floor(rand() * src.length);
    return { bytes: src.subarray(0, at), what: `truncated at ${at}` };
  }
  const bytes = Buffer.from(src);
  const count = 1 + Math.floor(rand() * 16);
  const headerOnly = kind > 0.7;
  const spots: number[] = [];
  for (let i = 0; i < count; i++) {
    const at = headerOnly ? Math.floor(rand() * Math.min(256, bytes.length)) : Math.floor(rand() * bytes.length);
    bytes[at] ^= 1 + Math.floor(rand() * 255);
    spots.push(at);
  }
  return { bytes, what: `${count} flips at ${spots.slice(0, 4).join(',')}${count > 4 ? '…' : ''}` };
}

const exitCodeOf = (code: string) => (code === 'BAD_USAGE' ? 2 : 1);
const MODEL = path.join(VIT, 'vit48_s10.onnx');
const NPZ = path.join(VIT, 'calib200.npz');
const RSS_LIMIT = 1.5 * 2 ** 30;

async function outcome(run: () => Promise<unknown>): Promise<{ exit: number; code?: string; message?: string }> {
  try {
    await run();
    return { exit: 0 };
  } catch (err) {
    const info = toErrorInfo(err);
    return { exit: exitCodeOf(info.code), code: info.code, message: info.message };
  }
}

function checkOutcome(o: { exit: number; code?: string; message?: string }, label: string): void {
  assert.ok([0, 1, 2].includes(o.exit), label);
  if (o.code) {
    assert.ok(ERROR_CODES.includes(o.code as never), `${label}: undocumented code ${o.code}`);
    assert.equal(hasStackTrace(o.message ?? ''), false, `${label}: ${o.message}`);
    assert.notEqual(o.code, 'INTERNAL', `${label}: INTERNAL error on a corrupted input: ${o.message}`);
  }
  assert.ok(process.memoryUsage().rss < RSS_LIMIT, `${label}: RSS ${process.memoryUsage().rss}`);
}

test('fuzz: 160 mutated models through inspect (and evaluate when they load)', async () => {
  const rand = mulberry32(15_001);
  const src = fs.readFileSync(MODEL);
  const dir = tempDir();
  const counts = { ok: 0, failed: 0 };
  for (let i = 0; i < 160; i++) {
    const { bytes, what } = mutate(src, rand);
    const file = path.join(dir, `m${i}.onnx`);
    fs.writeFileSync(file, bytes);
    const label = `model case ${i} (${what})`;
    const o = await outcome(async () => {
      await engine.inspect({ model: file, provider: 'cpu' });
      await engine.evaluate({ model: file, data: NPZ, limit: 16, provider: 'cpu' });
    });
    checkOutcome(o, label);
    counts[o.exit === 0 ? 'ok' : 'failed']++;
    fs.rmSync(file);
  }
  // The mutations must actually exercise the error paths.
  assert.ok(counts.failed >= 60, JSON.stringify(counts));
});

test('fuzz: 160 mutated .npz datasets through evaluate', async () => {
  const rand = mulberry32(15_002);
  const src = fs.readFileSync(NPZ);
  const dir = tempDir();
  const counts = { ok: 0, failed: 0 };
  for (let i = 0; i < 160; i++) {
    const { bytes, what } = mutate(src, rand);
    const file = path.join(dir, `d${i}.npz`);
    fs.writeFileSync(file, bytes);
    const o = await outcome(() => engine.evaluate({ model: MODEL, data: file, provider: 'cpu', batchSize: 100 }));
    checkOutcome(o, `npz case ${i} (${what})`);
    counts[o.exit === 0 ? 'ok' : 'failed']++;
    fs.rmSync(file);
  }
  assert.ok(counts.failed >= 60, JSON.stringify(counts));
});

test('fuzz: finetune on mutated data leaves nothing half-written', async () => {
  const rand = mulberry32(15_003);
  const src = fs.readFileSync(NPZ);
  for (let i = 0; i < 8; i++) {
    const dir = tempDir();
    const { bytes, what } = mutate(src, rand);
    const data = path.join(dir, 'd.npz');
    fs.writeFileSync(data, bytes);
    const out = path.join(dir, 'out', 'tuned.onnx');
    const o = await outcome(() => engine.finetune({ model: MODEL, data, output: out, maxSteps: 2, batchSize: 32, provider: 'cpu' }));
    checkOutcome(o, `finetune case ${i} (${what})`);
    // No temp files anywhere; the output is either absent or a complete, loadable model.
    const left = fs.existsSync(path.dirname(out)) ? fs.readdirSync(path.dirname(out)) : [];
    assert.deepEqual(
      left.filter((n) => n.endsWith('.tmp')),
      [],
      `case ${i}`,
    );
    if (fs.existsSync(out)) assert.ok(loadModel(out).initializerNames().length > 0);
    else assert.notEqual(o.exit, 0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('fuzz through the real CLI: exit codes in {0,1,2}, no stack trace, bounded peak RSS', () => {
  const rand = mulberry32(15_004);
  const model = fs.readFileSync(MODEL);
  const npz = fs.readFileSync(NPZ);
  const dir = tempDir();
  for (let i = 0; i < 12; i++) {
    const m = mutate(model, rand);
    const d = mutate(npz, rand);
    const mf = path.join(dir, `m${i}.onnx`);
    const df = path.join(dir, `d${i}.npz`);
    fs.writeFileSync(mf, i % 2 ? m.bytes : model);
    fs.writeFileSync(df, i % 2 ? npz : d.bytes);
    const r = runCliWatched(['eval', mf, '--data', df, '--limit', '50', '--provider', 'cpu', '--json'], { timeoutMs: 60_000 });
    const label = `cli case ${i} (${i % 2 ? `model ${m.what}` : `npz ${d.what}`})`;
    assert.equal(r.timedOut, false, label);
    assert.ok([0, 1, 2].includes(r.code ?? -1), `${label}: exit ${r.code} ${r.signal}\n${r.stderr}`);
    assert.equal(hasStackTrace(r.stderr), false, `${label}: ${r.stderr}`);
    assert.ok(r.peakRssMiB < 1024, `${label}: peak ${r.peakRssMiB} MiB`);
    if (r.code !== 0) assert.ok(ERROR_CODES.includes(JSON.parse(r.stdout).error.code), label);
  }
});

test('fuzz: the panel reads stored details of 120 mutated maps files, and a FIFO swapped in, without hanging', () => {
  // A maps file as fuse writes it: one 500×400 soft map, so it has a stored 384² detail and a top-3 table.
  const store = new MapStore('F32', Infinity);
  const plan = new Float64Array(500 * 400).map((_, i) => ((i * 2654435761) % 1000) / 2e8);
  store.add(1, { name: 'fc1', kind: 'mlp-fc1', map: { n: 500, m: 400, plan }, diagnostics: {} } as never);
  const dir = tempDir();
  const file = path.join(dir, 'maps.safetensors');
  store.write(file, { format: 'otfuse-maps' });
  store.release();
  const src = fs.readFileSync(file);
  const good = readStoredDetail(file, 'm1/fc1', 384, 3)!;
  assert.equal(good.outRows * good.outCols, 384 * 384, 'the unmutated file has its stored detail');
  const rand = mulberry32(31);
  const outcomes = { payload: 0, none: 0, error: 0 };
  for (let i = 0; i < 120; i++) {
    const m = mutate(src, rand);
    fs.writeFileSync(file, m.bytes); // the header cache sees the new size or times
    const label = `mutant ${i} (${m.what})`;
    try {
      const p = readStoredDetail(file, 'm1/fc1', 384, 3);
      if (!p) outcomes.none++;
      else {
        outcomes.payload++;
        assert.equal(p.data.length, p.outRows * p.outCols, label);
        assert.ok(p.outRows <= 384 && p.outCols <= 384, label);
        if (p.top) assert.equal(p.top.cols.length, p.rows * p.top.k, label);
      }
    } catch (err) {
      outcomes.error++;
      assert.ok(err instanceof Error && err.message.includes(file), `${label}: the error names the file: ${err}`);
      assert.equal(hasStackTrace(err.message), false, label);
    }
    assert.ok(process.memoryUsage().rss < RSS_LIMIT, `${label}: RSS ${process.memoryUsage().rss}`);
  }
  assert.ok(outcomes.error > 0 && outcomes.payload > 0, JSON.stringify(outcomes));
  // A FIFO put where the maps file was (after its header was cached): refused at once, not a hang.
  fs.writeFileSync(file, src);
  readStoredDetail(file, 'm1/fc1', 384, 3);
  fs.rmSync(file);
  execFileSync('mkfifo', [file]);
  assert.throws(() => readStoredDetail(file, 'm1/fc1', 384, 3), /regular file/);
});
