// `otfuse fuse` on two decoder LM folders, end to end through the engine API: the run folder's evaluation rows
// carry perplexity (parents equal to PyTorch's on the fixtures), OT one-shot fusion beats vanilla averaging, the maps
// are stored, and the fused model exported back to an HF folder (--like the anchor) reloads with identical logits.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { engine } from '../../worker/api';
import { causalBlocks } from '../../worker/data/causal';
import { importHf } from '../../worker/hf';
import { loadModel } from '../../worker/onnx/model';
import { runFeeds } from '../hf/helpers';
import { DEC, decReference } from './helpers';

const T = 64;

for (const fam of ['gpt2', 'llama']) {
  test(`fuse ${fam}-s0 + ${fam}-s1: perplexity rows, OT below vanilla, maps stored, export reloads with the same logits`, async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'otfuse-decrun-'));
    try {
      const A = path.join(DEC, `${fam}-s0`);
      const B = path.join(DEC, `${fam}-s1`);
      const text = (f: string) => ({ path: path.join(DEC, f), maxLength: T }) as never;
      const { record, runDir } = await engine.fuse({ models: [A, B], data: text('calib.txt'), evalData: text('heldout.txt'), runsDir: tmp });
      const row = (role: string) => record.metrics.find((m) => m.role === role)!;
      for (const [role, name] of [
        ['anchor', `${fam}-s0`],
        ['parent', `${fam}-s1`],
      ]) {
        const ref = decReference(name).perplexity;
        assert.ok(Math.abs(row(role).perplexity! - ref) / ref < 0.005, `${role} perplexity ${row(role).perplexity} vs PyTorch ${ref}`);
      }
      const ot = row('fused').perplexity!;
      const vanilla = row('vanilla').perplexity!;
      assert.ok(ot < 0.9 * vanilla, `OT one-shot perplexity ${ot} should be well below vanilla averaging's ${vanilla}`);
      assert.ok(fs.existsSync(path.join(runDir, 'maps.safetensors')));
      assert.ok(record.layers.some((l) => l.name === 'layer1.mlp') && record.layers.some((l) => l.name === 'layer0.attn.heads'));
      if (fam === 'llama')
        assert.ok(
          record.layers.some((l) => l.name === 'layer0.attn.kv_heads'),
          'GQA: KV-head maps',
        );
      // Export to an HF folder like the anchor; the importer reads it back to the same logits as fused.onnx.
      const out = path.join(tmp, 'exported');
      await engine.exportHf({ model: record.fusedModel, like: A, output: out });
      assert.ok(fs.existsSync(path.join(out, 'tokenizer.json')));
      const ids = causalBlocks(path.join(DEC, 'heldout.txt'), A, T).ids.subarray(0, 2 * T);
      const feeds = { input_ids: { dtype: 'i8', shape: [2, T], data: BigInt64Array.from(ids, (v) => BigInt(v)) } as never };
      const fused = await runFeeds(loadModel(record.fusedModel), feeds);
      const back = await runFeeds(importHf(out), feeds);
      let d = 0;
      for (let i = 0; i < fused.length; i++) d = Math.max(d, Math.abs(fused[i] - back[i]));
      assert.ok(d < 1e-6, `exported folder's logits differ by ${d}`);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
}
