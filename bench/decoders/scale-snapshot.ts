// Before/after check for refactors of the decoder fusion (worker/fusion/decoder): fuses the fixture pairs
// (test/fixtures/decoders: gpt2-s0 + gpt2-s1, llama-s0 + llama-s1, calib.txt, 64-token blocks) and writes every fused
// tensor and map to a folder; with --compare DIR it compares them with an earlier snapshot instead (max |Δ| per
// tensor, maps equal) and exits non-zero on any difference.
// Usage: node $(node scripts/test-one.mjs bench/decoders/scale-snapshot.ts) --out DIR | --compare DIR
import fs from 'node:fs';
import path from 'node:path';
import { causalBlocks } from '../../worker/data/causal';
import { fuseDecoders } from '../../worker/fusion/decoder/fuse';

const DEC = path.join(process.cwd(), 'test', 'fixtures', 'decoders');
const PAIRS = [
  ['gpt2-s0', 'gpt2-s1'],
  ['llama-s0', 'llama-s1'],
  ['llama-s1', 'llama-s0'],
];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const mode = args[0];
  const dir = args[1];
  if ((mode !== '--out' && mode !== '--compare') || !dir) throw new Error('usage: --out DIR | --compare DIR');
  let differ = 0;
  for (const [a, b] of PAIRS) {
    const { ids } = causalBlocks(path.join(DEC, 'calib.txt'), path.join(DEC, a), 64);
    const r = await fuseDecoders(path.join(DEC, a), path.join(DEC, b), { calibration: ids, blockLength: 64 });
    const maps = JSON.stringify({
      resid: [...r.maps.resid],
      heads: r.maps.heads.map((h) => ({ headOrder: [...h.headOrder], kvOrder: [...h.kvOrder], vCoords: h.vCoords ? [...h.vCoords] : null })),
      mlp: r.maps.mlp.map((m) => [...m]),
    });
    const sub = path.join(dir, `${a}+${b}`);
    if (mode === '--out') {
      fs.mkdirSync(sub, { recursive: true });
      fs.writeFileSync(path.join(sub, 'maps.json'), maps);
      for (const [key, t] of r.tensors) fs.writeFileSync(path.join(sub, `${key}.f32`), t);
      console.log(`${a}+${b}: ${r.tensors.size} tensors written`);
      continue;
    }
    const sameMaps = fs.readFileSync(path.join(sub, 'maps.json'), 'utf8') === maps;
    let worst = 0;
    let keys = 0;
    for (const f of fs.readdirSync(sub).filter((x) => x.endsWith('.f32'))) {
      const raw = fs.readFileSync(path.join(sub, f));
      const before = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      const after = r.tensors.get(f.slice(0, -4));
      keys++;
      if (!after || after.length !== before.length) {
        worst = Infinity;
        continue;
      }
      for (let i = 0; i < before.length; i++) worst = Math.max(worst, Math.abs(before[i] - after[i]));
    }
    if (keys !== r.tensors.size) worst = Infinity;
    console.log(`${a}+${b}: maps ${sameMaps ? 'identical' : 'DIFFER'}, ${keys} tensors, max |Δ| ${worst}`);
    if (!sameMaps || worst !== 0) differ++;
  }
  if (differ) process.exitCode = 1;
}

void main();
