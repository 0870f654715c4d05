// Lineage of a model otfuse wrote: ONNX `producer_name` "otfuse" and `metadata_props` saying what it is made of
// (parents with their sha256, the anchor, the recipe, the otfuse version and the measured accuracies), so the
// file explains itself outside the run folder. Read back by ModelSummary.metadata / readLineage.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { OnnxModel } from '../onnx/model';
import type { FuseRecipe, ModelMetrics } from '../types';
import { shareableName } from '../io/names';

export const LINEAGE_PREFIX = 'otfuse.';

/** A metric row in a model's metadata or model card. */
export interface LineageMetric {
  role: ModelMetrics['role'];
  label: string;
  start?: ModelMetrics['start'];
  accuracy?: number;
  loss?: number;
  sd?: number;
  data?: { name: string; sha256: string; n: number };
}

export interface Lineage {
  version: string;
  kind: 'fused' | 'finetuned' | 'merged';
  parents: { file: string; sha256: string }[];
  anchor?: string;
  recipe?: FuseRecipe;
  /** Accuracies measured when the model was written (label → accuracy), and on which data. */
  accuracies?: Record<string, number>;
  /** The metric rows measured when the model was written: role, label, accuracy, loss and the data (file name,
   * sha256, N; no local path). Stamped as `otfuse.metrics`; `otfuse.accuracies` is derived from it. */
  metrics?: ModelMetrics[];
  evalData?: string;
  run?: string;
  /** Read back from `otfuse.metrics` (readLineage). */
  metricRows?: LineageMetric[];
}

/** sha256 of a file, streamed in 4 MiB chunks (bounded memory for multi-GB models). */
/** sha256 of a model file; for a model folder (Hugging Face: config.json + safetensors), of its files' hashes in
 * name order (`name sha256` lines), so the same checkpoint always gets the same id. */
export function sha256File(file: string): string {
  if (fs.statSync(file).isDirectory()) {
    const names = fs
      .readdirSync(file)
      .filter((n) => /\.(json|safetensors)$/.test(n) && fs.statSync(path.join(file, n)).isFile())
      .sort();
    return crypto
      .createHash('sha256')
      .update(names.map((n) => `${n} ${sha256File(path.join(file, n))}\n`).join(''))
      .digest('hex');
  }
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 * 2 ** 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

export function accuraciesOf(metrics: ModelMetrics[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of metrics) if (m.accuracy !== undefined) out[m.label] = m.accuracy;
  return out;
}

/** A metric row as a shared artefact carries it: no local paths (the data by file name, sha256 and N). */
export function sharedRow(m: ModelMetrics): LineageMetric {
  return {
    role: m.role,
    label: m.label,
    ...(m.start ? { start: m.start } : {}),
    ...(m.accuracy !== undefined ? { accuracy: m.accuracy } : {}),
    ...(m.loss !== undefined ? { loss: m.loss } : {}),
    ...(m.sd !== undefined ? { sd: m.sd } : {}),
    ...(m.data ? { data: { name: path.basename(m.data.path), sha256: m.data.sha256, n: m.data.n } } : {}),
  };
}

/** Stamps `model` (in memory) with its lineage; save it afterwards. */
export function stampLineage(model: OnnxModel, lineage: Lineage): void {
  const props: Record<string, string> = {
    [`${LINEAGE_PREFIX}version`]: lineage.version,
    [`${LINEAGE_PREFIX}kind`]: lineage.kind,
    // File names and sha256 only: a model is shared, and absolute paths would publish the user's home folder and
    // layout (the run folder's run.json, which stays local, keeps the paths).
    [`${LINEAGE_PREFIX}parents`]: JSON.stringify(lineage.parents.map((p) => ({ file: shareableName(p.file), sha256: p.sha256 }))),
  };
  if (lineage.anchor) props[`${LINEAGE_PREFIX}anchor`] = shareableName(lineage.anchor);
  if (lineage.recipe) props[`${LINEAGE_PREFIX}recipe`] = JSON.stringify(lineage.recipe);
  const accuracies = lineage.accuracies ?? (lineage.metrics ? accuraciesOf(lineage.metrics) : undefined);
  if (accuracies && Object.keys(accuracies).length) props[`${LINEAGE_PREFIX}accuracies`] = JSON.stringify(accuracies);
  if (lineage.metrics?.length) props[`${LINEAGE_PREFIX}metrics`] = JSON.stringify(lineage.metrics.map(sharedRow));
  // File names only (see parents above).
  if (lineage.evalData) props[`${LINEAGE_PREFIX}evalData`] = path.basename(lineage.evalData);
  if (lineage.run) props[`${LINEAGE_PREFIX}run`] = path.basename(lineage.run);
  const proto = model.proto;
  proto.producerName = 'otfuse';
  proto.producerVersion = lineage.version;
  const kept = (proto.metadataProps ?? []).filter((p) => !(p.key ?? '').startsWith(LINEAGE_PREFIX));
  proto.metadataProps = [...kept, ...Object.entries(props).map(([key, value]) => ({ key, value }))];
}

/** The lineage stored in a model's metadata (undefined when otfuse did not write it). */
export function readLineage(metadata: Record<string, string> | undefined): Lineage | undefined {
  if (!metadata?.[`${LINEAGE_PREFIX}version`]) return undefined;
  const json = <T>(k: string): T | undefined => {
    try {
      return metadata[`${LINEAGE_PREFIX}${k}`] ? (JSON.parse(metadata[`${LINEAGE_PREFIX}${k}`]) as T) : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    version: metadata[`${LINEAGE_PREFIX}version`],
    kind: metadata[`${LINEAGE_PREFIX}kind`] === 'finetuned' ? 'finetuned' : metadata[`${LINEAGE_PREFIX}kind`] === 'merged' ? 'merged' : 'fused',
    parents: (json<{ path?: string; file: string; sha256: string }[]>('parents') ?? []).map((p) => ({ file: p.path ?? p.file, sha256: p.sha256 })),
    anchor: metadata[`${LINEAGE_PREFIX}anchor`],
    recipe: json<FuseRecipe>('recipe'),
    accuracies: json<Record<string, number>>('accuracies'),
    metricRows: json<LineageMetric[]>('metrics'),
    evalData: metadata[`${LINEAGE_PREFIX}evalData`],
    run: metadata[`${LINEAGE_PREFIX}run`],
  };
}
