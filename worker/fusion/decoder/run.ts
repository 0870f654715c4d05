// `otfuse fuse` on two decoder LM folders (GPT-2 / Llama family): the symmetry-respecting fusion of fuse.ts in the
// shape fuseModels' run folder takes (fused + vanilla models, maps as transport plans n·P, timings), so the run
// folder, run.json, evaluation rows (perplexity) and --output work as for every other fusion.
import { OtfuseError, throwIfCancelled } from '../../errors';
import type { Dataset } from '../../data/dataset';
import { hfFolderOf } from '../../hf/checkpoint';
import { readConfigJson } from '../../hf/config';
import { isDecoderType, type DecoderConfig } from '../../hf/config-decoder';
import type { OnnxModel } from '../../onnx/model';
import type { ProgressEvent } from '../../types';
import type { LoadedFusionResult } from '../fuse';
import { MapStore } from '../mapstore';
import type { MapRecord } from '../steps/aligner';
import { averageAligned, checkCompatible, decoderMaps, identityMaps } from './fuse';
import { captureDecoder } from './capture';
import { buildDecoder, decoderFromModel, readDecoder } from './parent';
import type { DecoderMaps } from './symmetry';
import { decoderMapDiagnostics } from './mapDiagnostics';

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

export interface DecoderFolderOptions {
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  weights?: number[];
  /** The folders as the job loaded them (HF importer): their weights are used, not read again. */
  models?: OnnxModel[];
  /** Build the vanilla average too (it is evaluated; default true). */
  vanilla?: boolean;
}

export async function fuseDecoderFolders(files: string[], calib: Dataset | undefined, options: DecoderFolderOptions): Promise<LoadedFusionResult> {
  if (files.length !== 2) throw new OtfuseError('BAD_USAGE', `decoder LMs are fused two at a time (got ${files.length} models)`);
  const timings: Record<string, number> = {};
  let t = performance.now();
  const [a, b] = files.map((f, k) => (options.models?.[k] ? decoderFromModel(hfFolderOf(f)!, options.models[k]) : readDecoder(hfFolderOf(f)!)));
  checkCompatible(a, b);
  const { ids, T } = calibrationBlocks(calib);
  options.onProgress?.({ stage: 'activations', message: 'decoder activations', done: 0, total: 2 });
  const actsA = await captureDecoder(a, ids, T);
  let maps: DecoderMaps;
  let spooled = actsA.spooledBytes;
  try {
    throwIfCancelled(options.signal);
    const actsB = await captureDecoder(b, ids, T);
    spooled += actsB.spooledBytes;
    try {
      timings.activations = (performance.now() - t) / 1000;
      t = performance.now();
      throwIfCancelled(options.signal);
      options.onProgress?.({ stage: 'align', message: 'decoder maps' });
      maps = await decoderMaps(a.config, actsA, actsB);
      timings.align = (performance.now() - t) / 1000;
    } finally {
      actsB.release();
    }
  } finally {
    actsA.release();
  }
  t = performance.now();
  const weight = options.weights ? options.weights[0] / (options.weights[0] + options.weights[1]) : 0.5;
  const fused = buildDecoder(a, averageAligned(a, b, maps, weight));
  const vanilla = options.vanilla === false ? undefined : buildDecoder(a, averageAligned(a, b, identityMaps(a.config), weight));
  timings.average = (performance.now() - t) / 1000;
  return { fused, vanilla, plans: [], heterogeneous: false, ...storeMaps(a.config, maps), timings, activationBytes: spooled };
}

/** The maps as transport plans in a MapStore, one at a time (an MLP's dense plan is 3072² float64 at GPT-2 size). */
function storeMaps(c: DecoderConfig, maps: DecoderMaps): Pick<LoadedFusionResult, 'maps' | 'mapStore'> {
  const store = new MapStore();
  const stored: MapRecord[] = [];
  const add = (name: string, kind: string, map: Int32Array) =>
    stored.push(store.add(1, { name, kind, map: planOf(map), diagnostics: decoderMapDiagnostics(map) }));
  add('residual', 'residual', maps.resid);
  maps.heads.forEach((h, l) => {
    add(`layer${l}.attn.heads`, 'heads', h.headOrder);
    if (c.kvHeads !== c.heads) add(`layer${l}.attn.kv_heads`, 'kv-heads', h.kvOrder);
    if (h.vCoords) add(`layer${l}.attn.v`, 'v-coordinates', h.vCoords);
    add(`layer${l}.mlp`, c.family === 'gpt2' ? 'mlp' : 'swiglu', maps.mlp[l]);
  });
  return { maps: [[], stored], mapStore: store };
}
