// `otfuse fuse` on two decoder LM folders (GPT-2 / Llama family): the symmetry-respecting fusion of fuse.ts in the
// shape fuseModels' run folder takes (fused + vanilla models, maps as transport plans n·P, timings), so the run
// folder, run.json, evaluation rows (perplexity) and --output work as for every other fusion.
import { OtfuseError, throwIfCancelled } from '../../errors';
import type { Dataset } from '../../data/dataset';
import { hfFolderOf } from '../../hf/checkpoint';
import { readConfigJson } from '../../hf/config';
import { isDecoderType } from '../../hf/config-decoder';
import type { ProgressEvent } from '../../types';
import type { LoadedFusionResult } from '../fuse';
import { MapStore } from '../mapstore';
import type { MapRecord } from '../steps/aligner';
import { averageAligned, checkCompatible, decoderMaps, identityMaps } from './fuse';
import { captureDecoder } from './capture';
import { buildDecoder, readDecoder } from './parent';

/** Is `file` a Hugging Face folder (or its weights file) of a decoder LM? */
export function isDecoderFolder(file: string): boolean {
  const dir = hfFolderOf(file);
  if (!dir) return false;
  try {
    return isDecoderType(readConfigJson(dir).model_type);
  } catch {
    return false;
  }
}

/** An assignment as a transport plan n·P (rows: the other model's units, columns: the anchor's), as maps.safetensors stores it. */
function planOf(map: Int32Array): { n: number; m: number; plan: Float64Array } {
  const n = map.length;
  const plan = new Float64Array(n * n);
  for (let i = 0; i < n; i++) plan[map[i] * n + i] = 1 / n;
  return { n, m: n, plan };
}

/** Calibration token blocks from a causal-text dataset. */
function calibrationBlocks(calib: Dataset | undefined): { ids: Int32Array; T: number } {
  if (!calib || !calib.causal || !calib.labelsPerSample)
    throw new OtfuseError('BAD_USAGE', "fusing decoder LMs needs calibration text (--data a .txt or .jsonl read with the models' tokenizer)");
  const T = calib.labelsPerSample;
  const batch = calib.take(Array.from({ length: calib.size }, (_, i) => i));
  const ids = Int32Array.from(batch.feeds.input_ids.data as BigInt64Array, (v) => Number(v));
  return { ids, T };
}

export async function fuseDecoderFolders(
  files: string[],
  calib: Dataset | undefined,
  options: { signal?: AbortSignal; onProgress?: (e: ProgressEvent) => void; weights?: number[] },
): Promise<LoadedFusionResult> {
  if (files.length !== 2) throw new OtfuseError('BAD_USAGE', `decoder LMs are fused two at a time (got ${files.length} models)`);
  const timings: Record<string, number> = {};
  let t = performance.now();
  const [a, b] = files.map((f) => readDecoder(hfFolderOf(f)!));
  checkCompatible(a, b);
  const { ids, T } = calibrationBlocks(calib);
  options.onProgress?.({ stage: 'activations', message: 'decoder activations', done: 0, total: 2 });
  const actsA = await captureDecoder(a, ids, T);
  throwIfCancelled(options.signal);
  const actsB = await captureDecoder(b, ids, T);
  timings.activations = (performance.now() - t) / 1000;
  t = performance.now();
  const maps = await decoderMaps(a.config, actsA, actsB);
  timings.align = (performance.now() - t) / 1000;
  const weight = options.weights ? options.weights[0] / (options.weights[0] + options.weights[1]) : 0.5;
  const fused = buildDecoder(a, averageAligned(a, b, maps, weight));
  const vanilla = buildDecoder(a, averageAligned(a, b, identityMaps(a.config), weight));
  const store = new MapStore();
  const records: MapRecord[] = [{ name: 'residual', kind: 'residual', map: planOf(maps.resid), diagnostics: {} }];
  maps.heads.forEach((h, l) => {
    records.push({ name: `layer${l}.attn.heads`, kind: 'heads', map: planOf(h.headOrder), diagnostics: {} });
    if (a.config.kvHeads !== a.config.heads) records.push({ name: `layer${l}.attn.kv_heads`, kind: 'kv-heads', map: planOf(h.kvOrder), diagnostics: {} });
    if (h.vCoords) records.push({ name: `layer${l}.attn.v`, kind: 'v-coordinates', map: planOf(h.vCoords), diagnostics: {} });
    records.push({ name: `layer${l}.mlp`, kind: a.config.family === 'gpt2' ? 'mlp' : 'swiglu', map: planOf(maps.mlp[l]), diagnostics: {} });
  });
  const stored = records.map((r) => store.add(1, r));
  return {
    fused,
    vanilla,
    plans: [],
    heterogeneous: false,
    maps: [[], stored],
    timings,
    activationBytes: (actsA.resid.byteLength + actsB.resid.byteLength) * 2,
    mapStore: store,
  };
}
