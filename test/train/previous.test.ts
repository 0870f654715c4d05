// The last good parameters (worker/train/previous.ts): kept in memory for small models, spooled to a temp file for
// large ones — the same bytes come back either way, and a diverging finetune writes the same checkpoint with both.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OtfuseError } from '../../worker/errors';
import { finetuneModel } from '../../worker/train/finetune';
import { collectGarbage, PreviousParams, trainMemory } from '../../worker/train/previous';

const VIT = path.join(process.cwd(), 'test/fixtures/vit/vit48_s10.onnx');
const TRAIN = path.join(process.cwd(), 'examples/data/fmnist-train-5k.json');

function withSpoolFrom<T>(bytes: number, f: () => T): T {
  const before = trainMemory.spoolPreviousBytes;
  trainMemory.spoolPreviousBytes = bytes;
  try {
    return f();
  } finally {
    trainMemory.spoolPreviousBytes = before;
  }
}

for (const spool of [false, true]) {
  test(`last good parameters (${spool ? 'spooled' : 'in memory'}): the latest kept copy comes back bit for bit; drop forgets it`, () => {
    const n = 100_003;
    const p = withSpoolFrom(spool ? 0 : Infinity, () => new PreviousParams(n));
    try {
      assert.equal(p.spooled, spool);
      const spooled = p.spooled;
      assert.equal(p.read(), undefined, 'nothing kept yet');
      const a = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 1e3);
      const b = Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? NaN : Math.cos(i)));
      p.keep(a);
      a[5] = 42; // the copy is a copy
      assert.equal(p.read()![5], Math.fround(Math.sin(5) * 1e3));
      p.keep(b);
      assert.deepEqual(new Uint8Array(p.read()!.buffer), new Uint8Array(b.buffer));
      p.drop();
      assert.equal(p.read(), undefined);
      p.keep(a); // no-op after drop
      assert.equal(p.spooled, spooled, 'still large after drop');
      assert.equal(p.read(), undefined);
      collectGarbage(); // callable, and twice
      collectGarbage();
    } finally {
      p.release();
    }
  });
}

test('a NaN loss writes the same last good checkpoint whether the copy is spooled or in memory', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-prev-'));
  const run = async (spoolFrom: number, name: string): Promise<Buffer> => {
    const output = path.join(dir, name);
    const before = trainMemory.spoolPreviousBytes;
    trainMemory.spoolPreviousBytes = spoolFrom;
    try {
      await assert.rejects(
        finetuneModel(
          { model: VIT, data: { path: TRAIN, limit: 640 }, output, maxSteps: 5, batchSize: 64, lr: 1e30, warmupSteps: 0, clipNorm: 0, seed: 2 },
          {},
        ),
        (err: unknown) => err instanceof OtfuseError && /last good parameters \(after step \d+\) were written/.test(err.message),
      );
    } finally {
      trainMemory.spoolPreviousBytes = before;
    }
    return fs.readFileSync(output);
  };
  const memory = await run(Infinity, 'memory.onnx');
  const spooled = await run(0, 'spooled.onnx');
  assert.ok(memory.equals(spooled), 'the checkpoints differ');
  fs.rmSync(dir, { recursive: true, force: true });
});
