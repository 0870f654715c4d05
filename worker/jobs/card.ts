// The model card's facts for an export, from the run store: what hf/export.ts cannot read itself (it sits below
// the run store). Passed to exportHf as its CardSource by the API.
import path from 'node:path';
import type { CardInfo, CardMetric } from '../hf/card';
import { readLineage } from '../runs/lineage';
import { readRun } from '../runs/store';

/** Parents, recipe and measurements for the card, from the model's own lineage (its metadata: it travels with
 * the file, e.g. a `-o` copy of a run's fused model), completed from its run's run.json when the model still lies
 * in that run folder (same run id). */
export function cardFromRun(model: string, metadata: Record<string, string> | undefined): CardInfo {
  const lineage = readLineage(metadata);
  const entry = readRun(path.dirname(path.resolve(model)));
  const r = entry.record && (!lineage || lineage.run === entry.record.id) ? entry.record : undefined;
  if (!lineage && !r) return {};
  const parents = lineage?.parents ?? r!.parents ?? r!.models.map((file) => ({ file, sha256: undefined as string | undefined }));
  const metrics: CardMetric[] | undefined = r
    ? r.metrics.map((m) => ({ ...m, data: m.data && { name: path.basename(m.data.path), n: m.data.n, sha256: m.data.sha256 } }))
    : (lineage?.metricRows ?? Object.entries(lineage?.accuracies ?? {}).map(([label, accuracy]) => ({ label, accuracy })));
  return {
    parents: parents.map((p) => p.file),
    parentHashes: parents.map((p) => p.sha256),
    anchor: lineage?.anchor ?? r?.anchor,
    recipe: (lineage?.recipe ?? r?.recipe) as Record<string, unknown> | undefined,
    metrics,
    evalIsCalibration: r ? r.evalIsCalibration : /\(calibration data\)$/.test(lineage?.evalData ?? ''),
    ...(r ? { run: entry.dir } : {}),
  };
}
