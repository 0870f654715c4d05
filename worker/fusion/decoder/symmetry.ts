// The permutation symmetries of a decoder LM's checkpoint, as a table of rules: for every tensor (by its Hugging Face
// key), which map permutes each axis. Maps:
//   resid — the residual stream's channels (embeddings, every norm's gain/bias, every projection's input side,
//           o_proj / down_proj / c_proj outputs, lm_head; the tied lm_head shares it through the embedding).
//   heads — whole query heads: a head's head_dim coordinates move together (RoPE rotates the (i, i + d/2) pairs of a
//           head, so nothing is permuted inside a Q/K head). Q rows, O's input columns.
//   kv    — whole key-value heads (GQA: a KV head moves with its group of query heads; see alignHeads).
//   mlp   — MLP neurons: SwiGLU's gate_proj and up_proj rows share it, down_proj takes it on its input side;
//           GPT-2's c_fc output / c_proj input.
//   v / o — V's output rows (kv space) and O's input columns (query-head space): whole heads as above, plus one
//           order of the coordinates inside each KV head (shared by the query heads of its group).
//   qkv   — GPT-2's fused c_attn output axis: [q | k | v], q and k with the head map, v with the v map (split,
//           permuted, repacked).
// A map is an index array: aligned[i] = original[map[i]].
import { OtfuseError } from '../../errors';
import type { DecoderConfig } from '../../hf/config-decoder';

export interface HeadMap {
  headOrder: Int32Array;
  kvOrder: Int32Array;
  /** V coordinates (kvHeads·d): aligned coordinate g·d + k takes kvOrder[g]·d + π_g(k); π_g is free inside a head
   * (V/O only: Q/K coordinates never move inside a head). Absent: π_g = identity. */
  vCoords?: Int32Array;
}

export type MapName = 'resid' | 'heads' | 'kv' | 'v' | 'o' | 'mlp' | 'qkv';
export interface TensorRule {
  key: string;
  /** The map of each axis (null: not permuted), for the tensor's shape as stored. */
  axes: (MapName | null)[];
}

export interface DecoderMaps {
  resid: Int32Array;
  /** Per layer: the query-head order (length heads) and the key-value-head order (length kvHeads); with GQA,
   * headOrder keeps every query head in its KV head's group. */
  heads: HeadMap[];
  /** Per layer: the MLP neuron order. */
  mlp: Int32Array[];
}

/** The rules for every tensor of the architecture (keys as transformers names them). */
export function decoderRules(c: DecoderConfig): TensorRule[][] {
  return c.family === 'gpt2' ? gpt2Rules(c) : llamaRules(c);
}

function gpt2Rules(c: DecoderConfig): TensorRule[][] {
  const top: TensorRule[] = [
    { key: 'transformer.wte.weight', axes: [null, 'resid'] },
    { key: 'transformer.wpe.weight', axes: [null, 'resid'] },
    { key: 'transformer.ln_f.weight', axes: ['resid'] },
    { key: 'transformer.ln_f.bias', axes: ['resid'] },
  ];
  if (!c.tied) top.push({ key: 'lm_head.weight', axes: [null, 'resid'] });
  const layers = Array.from({ length: c.layers }, (_, l) => {
    const p = `transformer.h.${l}`;
    return [
      { key: `${p}.ln_1.weight`, axes: ['resid'] },
      { key: `${p}.ln_1.bias`, axes: ['resid'] },
      { key: `${p}.attn.c_attn.weight`, axes: ['resid', 'qkv'] }, // Conv1D: [in, out]
      { key: `${p}.attn.c_attn.bias`, axes: ['qkv'] },
      { key: `${p}.attn.c_proj.weight`, axes: ['o', 'resid'] },
      { key: `${p}.attn.c_proj.bias`, axes: ['resid'] },
      { key: `${p}.ln_2.weight`, axes: ['resid'] },
      { key: `${p}.ln_2.bias`, axes: ['resid'] },
      { key: `${p}.mlp.c_fc.weight`, axes: ['resid', 'mlp'] },
      { key: `${p}.mlp.c_fc.bias`, axes: ['mlp'] },
      { key: `${p}.mlp.c_proj.weight`, axes: ['mlp', 'resid'] },
      { key: `${p}.mlp.c_proj.bias`, axes: ['resid'] },
    ] as TensorRule[];
  });
  return [top, ...layers];
}

function llamaRules(c: DecoderConfig): TensorRule[][] {
  const top: TensorRule[] = [
    { key: 'model.embed_tokens.weight', axes: [null, 'resid'] },
    { key: 'model.norm.weight', axes: ['resid'] },
  ];
  if (!c.tied) top.push({ key: 'lm_head.weight', axes: [null, 'resid'] });
  const layers = Array.from({ length: c.layers }, (_, l) => {
    const p = `model.layers.${l}`;
    const a = `${p}.self_attn`;
    const m = `${p}.mlp`;
    const rules: TensorRule[] = [
      { key: `${p}.input_layernorm.weight`, axes: ['resid'] },
      { key: `${p}.post_attention_layernorm.weight`, axes: ['resid'] },
      { key: `${a}.q_proj.weight`, axes: ['heads', 'resid'] },
      { key: `${a}.k_proj.weight`, axes: ['kv', 'resid'] },
      { key: `${a}.v_proj.weight`, axes: ['v', 'resid'] },
      { key: `${a}.o_proj.weight`, axes: ['resid', 'o'] },
      { key: `${m}.gate_proj.weight`, axes: ['mlp', 'resid'] },
      { key: `${m}.up_proj.weight`, axes: ['mlp', 'resid'] },
      { key: `${m}.down_proj.weight`, axes: ['resid', 'mlp'] },
    ];
    if (c.qkvBias)
      rules.push(...(['q', 'k', 'v'] as const).map((x) => ({ key: `${a}.${x}_proj.bias`, axes: [x === 'q' ? 'heads' : x === 'k' ? 'kv' : 'v'] as MapName[] })));
    if (c.oBias) rules.push({ key: `${a}.o_proj.bias`, axes: ['resid'] });
    if (c.mlpBias)
      rules.push({ key: `${m}.gate_proj.bias`, axes: ['mlp'] }, { key: `${m}.up_proj.bias`, axes: ['mlp'] }, { key: `${m}.down_proj.bias`, axes: ['resid'] });
    return rules;
  });
  return [top, ...layers];
}

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
