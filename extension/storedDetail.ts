// The detail maps fuse stores with the maps (worker/fusion/mapdetail.ts: `detail/<key>`, `top/<key>`,
// `topmass/<key>`): for a run made with them, the panel's detail map of a layer is three positioned reads of
// ~0.7 MB in all (the 384² block means and the rows' top-3), on the extension host with no worker thread and without
// reading the 36 MB map (synchronous: bounded, and faster than three turns on a loaded thread pool). The arithmetic
// was done at fuse time the way extension/mapThread.ts does it (tested equal); a run made before has none of these
// tensors and takes the worker thread's path (alignmentView.ts readMap).
import type { MapPayload } from '../contracts/protocol';
import { closeQuietly, DETAIL_PREFIX, openRegular, readExactly, TOP_MASS_PREFIX, TOP_PREFIX } from '../worker/client';
import { identityOf, MapsFile, valueRange } from './safetensors';

/** The names fuse stores them under: the engine's (worker/fusion/mapdetail.ts, through its client). */
export { DETAIL_PREFIX, TOP_MASS_PREFIX, TOP_PREFIX };

interface Located {
  rows: number;
  cols: number;
  position: number;
  bytes: number;
}

/** Where `tensor`'s stored detail (at most side² block means) and its top-`top` table lie, when the file has them in
 * that size (a detail of another size, or a top table of another k, is not used). */
export function storedDetailOf(maps: MapsFile, tensor: string, side: number, top: number): { detail: Located; cols?: Located; mass?: Located } | undefined {
  if (!maps.header[tensor]) return undefined;
  const { rows, cols } = maps.target(tensor);
  const detail = maps.tensorAt(DETAIL_PREFIX + tensor, 'F32');
  if (!detail || detail.rows !== Math.min(rows, side) || detail.cols !== Math.min(cols, side)) return undefined;
  if (!top) return { detail };
  const k = Math.max(1, Math.min(top, cols));
  const topCols = maps.tensorAt(TOP_PREFIX + tensor, 'I32');
  const topMass = maps.tensorAt(TOP_MASS_PREFIX + tensor, 'F64');
  const fits = (t?: Located) => t && t.rows === rows && t.cols === k;
  if (!fits(topCols) || !fits(topMass)) return undefined;
  return { detail, cols: topCols, mass: topMass };
}

/** `tensor`'s detail map as the panel draws it (block means at most side², with min and max, and the top-`top` table
 * when asked), read from the stored tensors; undefined when the file has none of that size. Synchronous: under a
 * millisecond for the ~0.7 MB (a bounded read, unlike the map's 36 MB), where each awaited read on the thread pool of
 * a loaded 2-core machine waited tens of ms for its turn. */
export function readStoredDetail(file: string, tensor: string, side: number, top: number): MapPayload | undefined {
  let maps = MapsFile.cached(file);
  let where = storedDetailOf(maps, tensor, side, top);
  if (!where) return undefined;
  // The engine's reader of workspace files (regular files only, a FIFO cannot hang the open, exact reads).
  const opened = openRegular(file, 'IO', 'maps file');
  try {
    const id = identityOf(opened.stat);
    if (id !== maps.identity) {
      // Replaced since its header was read: the header of the file now open (or the map's own path, when it moves on).
      maps = MapsFile.cached(file);
      where = storedDetailOf(maps, tensor, side, top);
      if (!where || maps.identity !== id) return undefined;
    }
    // Each read is its own buffer (not a view of a shared one): it crosses to the webview as it is.
    const read = (at: Located) => readExactly(opened, at.bytes, at.position, 'IO', `stored detail of '${tensor}'`).buffer;
    const data = new Float32Array(read(where.detail));
    const { rows, cols } = maps.target(tensor);
    const payload: MapPayload = { tensor, rows, cols, outRows: where.detail.rows, outCols: where.detail.cols, data, ...valueRange(data) };
    if (where.cols && where.mass) payload.top = { k: where.cols.cols, cols: new Int32Array(read(where.cols)), mass: new Float64Array(read(where.mass)) };
    return payload;
  } finally {
    closeQuietly(opened);
  }
}
