// The permutation symmetries of a decoder LM's checkpoint applied to its tensors: the rule table (which map permutes
// each axis of each tensor, by Hugging Face key) is derived from the decoder schedule's step handlers
// (worker/fusion/steps/decoder.ts, which also says what each map means); here the maps become coordinate orders
// and the tensors are permuted. A map is an index array: aligned[i] = original[map[i]].
import { OtfuseError } from '../../errors';
import type { DecoderConfig } from '../../hf/config-decoder';
import { decoderRules, type DecoderMaps, type MapName } from '../steps/decoder';

export { decoderRules, type DecoderMaps, type HeadMap, type MapName, type TensorRule } from '../steps/decoder';

/** Whole-head order → coordinate order (head h's coordinates h·d … h·d + d − 1 move together). */
export function expandHeads(order: Int32Array, hd: number): Int32Array {
  const out = new Int32Array(order.length * hd);
  for (let h = 0; h < order.length; h++) for (let k = 0; k < hd; k++) out[h * hd + k] = order[h] * hd + k;
  return out;
}

/** The coordinate map of every map name for layer `layer` (−1: the embeddings / final norm). */
export function coordinateMaps(c: DecoderConfig, maps: DecoderMaps, layer: number): Record<MapName, Int32Array | undefined> {
  const hd = c.hidden / c.heads;
  if (layer < 0) return { resid: maps.resid, heads: undefined, kv: undefined, v: undefined, o: undefined, mlp: undefined, qkv: undefined };
  const { headOrder, kvOrder } = maps.heads[layer];
  const heads = expandHeads(headOrder, hd);
  const v = maps.heads[layer].vCoords ?? expandHeads(kvOrder, hd);
  const rep = c.heads / c.kvHeads;
  const o = new Int32Array(c.hidden);
  for (let h = 0; h < c.heads; h++) {
    const g = Math.floor(h / rep);
    for (let k = 0; k < hd; k++) o[h * hd + k] = headOrder[h] * hd + (v[g * hd + k] - kvOrder[g] * hd);
  }
  const qkv = new Int32Array(3 * c.hidden);
  for (let i = 0; i < c.hidden; i++) {
    qkv[i] = heads[i];
    qkv[c.hidden + i] = c.hidden + heads[i];
    qkv[2 * c.hidden + i] = 2 * c.hidden + v[i];
  }
  return { resid: maps.resid, heads, kv: expandHeads(kvOrder, hd), v, o, mlp: maps.mlp[layer], qkv };
}

/** `data` (row-major, `shape`) with each axis reordered by its map: out[i, j] = data[map₀[i], map₁[j]]. */
export function permuteTensor(data: Float32Array, shape: number[], axes: (Int32Array | null | undefined)[], key: string): Float32Array {
  if (shape.length === 1) {
    const m = axes[0];
    if (!m) return data;
    if (m.length !== shape[0]) throw new OtfuseError('MISMATCH', `map of length ${m.length} for tensor '${key}' [${shape}]`);
    return Float32Array.from(m, (src) => data[src]);
  }
  const [rows, cols] = shape;
  const r = axes[0];
  const cm = axes[1];
  if ((r && r.length !== rows) || (cm && cm.length !== cols)) throw new OtfuseError('MISMATCH', `map length differs from tensor '${key}' [${shape}]`);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const si = r ? r[i] : i;
    for (let j = 0; j < cols; j++) out[i * cols + j] = data[si * cols + (cm ? cm[j] : j)];
  }
  return out;
}

/** Every tensor of a checkpoint (float32, by key) with the maps applied, handed to `visit` one at a time. */
export function forEachAligned(
  c: DecoderConfig,
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
  maps: DecoderMaps,
  visit: (key: string, aligned: Float32Array) => void,
): void {
  decoderRules(c).forEach((rules, i) => {
    const coords = coordinateMaps(c, maps, i - 1);
    for (const rule of rules) {
      const t = tensors.get(rule.key);
      if (!t) throw new OtfuseError('BAD_MODEL', `no tensor '${rule.key}'`);
      visit(
        rule.key,
        permuteTensor(
          t.data,
          t.shape,
          rule.axes.map((a) => (a ? coords[a] : null)),
          rule.key,
        ),
      );
    }
  });
}

/** Every tensor of a checkpoint (float32, by key) with the maps applied. */
export function applyMaps(c: DecoderConfig, tensors: Map<string, { shape: number[]; data: Float32Array }>, maps: DecoderMaps): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  forEachAligned(c, tensors, maps, (key, aligned) => out.set(key, aligned));
  return out;
}
