// What a map's rows and columns are, by its kind: encoder maps align neurons; a decoder run (issue 29) stores
// head-level maps for attention (a heads×heads matrix per layer: query heads, and with grouped-query attention the
// key-value heads), the V/O coordinates inside each KV head, the MLP's neurons (SwiGLU: gate and up share the map)
// and the residual stream's channels.
import type { LayerMapInfo } from '../../contracts/protocol';

interface Units {
  /** Plural noun of one row/column. */
  unit: string;
  /** What the map is, for the caption. */
  what: string;
}

const UNITS: Record<string, Units> = {
  heads: { unit: 'attention heads', what: 'attention: whole-head map (heads × heads)' },
  'kv-heads': { unit: 'key-value heads', what: 'attention: key-value-head map (GQA groups)' },
  'v-coordinates': { unit: 'V/O coordinates', what: 'attention: V/O coordinates inside each KV head' },
  mlp: { unit: 'MLP neurons', what: 'MLP: neuron map' },
  swiglu: { unit: 'MLP neurons', what: 'MLP: neuron map (gate and up share it)' },
  residual: { unit: 'residual channels', what: 'residual stream' },
};

export function mapUnits(kind: string): Units {
  return UNITS[kind] ?? { unit: 'neurons', what: kind };
}

/** The caption of the selected map: "layer0.attn.heads — attention: whole-head map (heads × heads) · 4×4". */
export function mapCaption(l: Pick<LayerMapInfo, 'name' | 'kind' | 'rows' | 'cols'>): string {
  return `${l.name} — ${mapUnits(l.kind).what} · ${l.rows}×${l.cols}`;
}

/** Its tooltip: what N rows and columns are. */
export function mapAxes(l: Pick<LayerMapInfo, 'kind' | 'rows' | 'cols'>): string {
  const u = mapUnits(l.kind).unit;
  return `N: ${l.rows} ${u} of the other model × ${l.cols} of the anchor`;
}
