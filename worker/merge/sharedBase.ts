// Do two parents share a base? Fine-tunes of one checkpoint differ by a small task vector; independently trained
// models differ by as much as two random draws. The statistic, per float tensor present in both with the same
// shape (at least MIN_ENTRIES entries):
//
//   ratio = ‖a − b‖ / sqrt(E_π ‖a − π(b)‖²),   E_π ‖a − π(b)‖² = ‖a‖² + ‖b‖² − 2 n ā b̄
//
// where π is a uniformly random permutation of b's entries (a "random pairing"; the expectation has this closed
// form, so no permutation is drawn). Independent models give ratio ≈ 1 on every tensor; fine-tunes of one base give
// ratio ≪ 1. The parents share a base when every compared tensor is clearly closer than a random pairing (largest
// ratio ≤ 0.75), the typical one much closer (median ≤ 0.25), and most float tensors could be compared (same names
// and shapes). One pass over the weights. (Measured: two fine-tunes of vit48_s10, median 0.10 / max 0.38; two
// independently trained ViTs, median 1.00 / max 1.09.)
import path from 'node:path';
import { isFloatTensor, type OnnxModel } from '../onnx/model';
import { hfFolderOf } from '../hf/checkpoint';
import { exists, readJsonObject, READ_LIMITS } from '../io/read';
import type { SharedBaseReport } from '../types';

export const SHARED_BASE_THRESHOLD = 0.75;
export const SHARED_BASE_MEDIAN_THRESHOLD = 0.25;
const MIN_ENTRIES = 16;
export const SHARED_BASE_MESSAGE = 'these models share a base; alignment is the identity; consider `merge`';

function floatShapes(model: OnnxModel): Map<string, string> {
  const out = new Map<string, string>();
  for (const t of model.graph.initializer ?? []) if (isFloatTensor(t)) out.set(t.name ?? '', (t.dims ?? []).map(Number).join('x'));
  return out;
}

/** The per-tensor ratio (undefined when the tensor carries no information: too small, or constant in both). */
export function pairingRatio(a: Float32Array, b: Float32Array): number | undefined {
  const n = a.length;
  if (n < MIN_ENTRIES || b.length !== n) return undefined;
  let diff = 0;
  let aa = 0;
  let bb = 0;
  let sa = 0;
  let sb = 0;
  for (let j = 0; j < n; j++) {
    const d = a[j] - b[j];
    diff += d * d;
    aa += a[j] * a[j];
    bb += b[j] * b[j];
    sa += a[j];
    sb += b[j];
  }
  const random = aa + bb - (2 * sa * sb) / n;
  if (!(random > 1e-12 * Math.max(aa + bb, 1e-30))) return undefined;
  return Math.sqrt(diff / random);
}

/** Compares the first model with each other one; shared only when every pair shares a base. */
export function detectSharedBase(models: OnnxModel[]): SharedBaseReport {
  let maxRatio = 0;
  let worstTensor = '';
  const ratios: number[] = [];
  let comparable = true;
  const shapes0 = floatShapes(models[0]);
  for (const other of models.slice(1)) {
    const shapes = floatShapes(other);
    const common = [...shapes0].filter(([n, s]) => shapes.get(n) === s).map(([n]) => n);
    if (common.length < 0.9 * Math.max(shapes0.size, shapes.size)) comparable = false;
    for (const name of common) {
      const r = pairingRatio(models[0].getInitializer(name).data, other.getInitializer(name).data);
      if (r === undefined) continue;
      ratios.push(r);
      if (r >= maxRatio) {
        maxRatio = r;
        worstTensor = name;
      }
    }
  }
  ratios.sort((x, y) => x - y);
  const medianRatio = ratios.length ? ratios[Math.floor(ratios.length / 2)] : NaN;
  const shared = comparable && ratios.length > 0 && maxRatio <= SHARED_BASE_THRESHOLD && medianRatio <= SHARED_BASE_MEDIAN_THRESHOLD;
  const report: SharedBaseReport = {
    shared,
    maxRatio,
    worstTensor,
    medianRatio,
    tensors: ratios.length,
    threshold: SHARED_BASE_THRESHOLD,
    medianThreshold: SHARED_BASE_MEDIAN_THRESHOLD,
    message: shared
      ? SHARED_BASE_MESSAGE
      : comparable
        ? `the models do not share a base (median tensor distance ${medianRatio.toFixed(2)}× a random pairing's; '${worstTensor}' ${maxRatio.toFixed(2)}×)`
        : 'the models do not share a base (their parameters differ in names or shapes)',
  };
  if (shared) Object.assign(report, findBase(models.map((m) => m.file)));
  return report;
}

/**
 * The base a parent's Hugging Face config names (`_name_or_path`), looked up as given, next to the parents and
 * among their parent folder's entries by its last path component.
 */
export function findBase(parents: string[]): { base?: string; baseName?: string } {
  for (const p of parents) {
    const dir = hfFolderOf(p);
    if (!dir) continue;
    let name: unknown;
    try {
      name = readJsonObject(path.join(dir, 'config.json'), { code: 'BAD_MODEL', what: 'config', maxBytes: READ_LIMITS.json })._name_or_path;
    } catch {
      continue;
    }
    if (typeof name !== 'string' || !name) continue;
    const leaf = path.basename(name);
    const candidates = [path.resolve(name), path.resolve(path.dirname(dir), name), path.resolve(path.dirname(dir), leaf), path.resolve(dir, '..', '..', leaf)];
    const parentsAbs = new Set(parents.map((x) => path.resolve(x)));
    const found = candidates.find((c) => !parentsAbs.has(c) && exists(path.join(c, 'config.json')));
    return found ? { base: found, baseName: name } : { baseName: name };
  }
  return {};
}

/**
 * How many of fusion's square maps are the identity assignment (every row's largest entry on its own index), of
 * those whose plan is in memory: for fine-tunes of one base, OT should find the identity.
 */
export function identityMaps(maps: { map: { plan: ArrayLike<number>; n: number; m: number } }[][]): { maps: number; identity: number } {
  let count = 0;
  let identity = 0;
  for (const r of maps.flat()) {
    const { plan, n, m } = r.map;
    if (n !== m || plan.length !== n * m) continue;
    count++;
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      const row = i * m;
      for (let j = 0; j < m; j++)
        if (plan[row + j] > plan[row + i]) {
          ok = false;
          break;
        }
    }
    if (ok) identity++;
  }
  return { maps: count, identity };
}
