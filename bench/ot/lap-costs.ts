// Real assignment costs for bench/ot/lap-side.ts: the squared-distance cost matrices decoder fusion solves its maps
// from (worker/fusion/decoder/fuse.ts groupCost), between the two random-init parents of bench/decoders/make_scale.py
// on its calib.txt (128-token blocks), written as raw float64 (row-major) files `<pair>-<group>.f64`.
// Usage: node $(node scripts/test-one.mjs bench/ot/lap-costs.ts) [--out .cache/lap-costs] [--pair gpt2|llama] [--groups resid,mlp.0,...]
import fs from 'node:fs';
import path from 'node:path';
import { causalBlocks } from '../../worker/data/causal';
import { captureDecoder, type ActGroup } from '../../worker/fusion/decoder/capture';
import { groupCost } from '../../worker/fusion/decoder/fuse';
import { readDecoder } from '../../worker/fusion/decoder/parent';
import { CostEngine } from '../../worker/fusion/cost';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const k = args.indexOf(name);
  return k >= 0 ? args[k + 1] : dflt;
};
const PAIRS: Record<string, [string, string, string]> = {
  gpt2: ['gpt2-124m-s0', 'gpt2-124m-s1', 'resid,mlp.0,mlp.6,mlp.11'],
  llama: ['llama-gqa-s0', 'llama-gqa-s1', 'mlp.0'],
};

async function main(): Promise<void> {
  const root = '.cache/decoders-scale';
  const out = opt('--out', '.cache/lap-costs');
  const pair = opt('--pair', 'gpt2');
  const [a, b, groups] = PAIRS[pair];
  fs.mkdirSync(out, { recursive: true });
  const dirA = path.join(root, a),
    dirB = path.join(root, b);
  const { ids } = causalBlocks(path.join(root, 'calib.txt'), dirA, 128);
  const A = await captureDecoder(readDecoder(dirA), ids, 128);
  const B = await captureDecoder(readDecoder(dirB), ids, 128);
  const costs = await CostEngine.create();
  try {
    for (const g of opt('--groups', groups).split(',')) {
      const { C, n } = await groupCost(costs, A, B, g as ActGroup);
      fs.writeFileSync(path.join(out, `${pair}-${g}.f64`), C);
      console.log(`${pair} ${g}: ${n}×${n}`);
    }
  } finally {
    A.release();
    B.release();
    await costs.release();
  }
}

void main();
