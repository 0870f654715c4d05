// What the Alignment view shows first when a run opens, known to both sides: the view selects that layer, and the
// host sends that layer's detail map with the run, unasked (extension/alignmentView.ts), so that the first heatmap
// does not wait for the view to be built and its request to cross back (issue 31, "the panel never waits"). Imports
// nothing at run time.
import type { LayerMapInfo } from '../worker/types';

/** The detail map the view draws: block means of at most DETAIL_SIDE² cells, with each row's top DETAIL_TOP_K
 * matches. */
export const DETAIL_SIDE = 384;
export const DETAIL_TOP_K = 3;

/** How much a map says (0 = uniform, 1 = a permutation), for choosing the default layer. */
export function informativeness(d: Record<string, number> | undefined, cols: number): number {
  const mbm = d?.meanBestMatch;
  if (mbm === undefined || !Number.isFinite(mbm)) return -1;
  const uniform = 1 / Math.max(1, cols);
  return (mbm - uniform) / Math.max(1e-9, 1 - uniform);
}

/** The layer shown first: the most informative one (highest row confidence above uniform), not a near-uniform map;
 * on ties (e.g. no diagnostics) a map solved by OT rather than a residual one (a decoder run opens on a head map). */
export function defaultLayer(layers: LayerMapInfo[]): LayerMapInfo {
  const first = layers.find((l) => l.kind !== 'residual') ?? layers[0];
  return layers.reduce((best, l) => (informativeness(l.diagnostics, l.cols) > informativeness(best.diagnostics, best.cols) ? l : best), first);
}
