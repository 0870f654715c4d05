// The detail maps fuse stores with the maps (worker/fusion/mapdetail.ts: `detail/<key>`, `top/<key>`,
// `topmass/<key>`): for a run made with them, the panel's detail map of a layer is three positioned reads of
// ~0.7 MB in all (the 384² block means and the rows' top-3), on the extension host with no worker thread and without
// reading the 36 MB map (synchronous: bounded, and faster than three turns on a loaded thread pool). The arithmetic
// was done at fuse time the way extension/mapThread.ts does it (tested equal); a run made before has none of these
// tensors and takes the worker thread's path (alignmentView.ts readMap).
import fs from 'node:fs';
import type { MapPayload } from '../contracts/protocol';
import { identityOf, MapsFile } from './safetensors';

/** The names fuse stores them under (worker/fusion/mapdetail.ts; the extension reaches the engine only through its
 * client: test/ui/storedDetail.test.ts checks they agree). */
export const DETAIL_PREFIX = 'detail/';
export const TOP_PREFIX = 'top/';
export const TOP_MASS_PREFIX = 'topmass/';

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
 * when asked), read from the stored tensors; undefined when the file has none of that size. */
export async function readStoredDetail(file: string, tensor: string, side: number, top: number): Promise<MapPayload | undefined> {
  return readStoredDetailNow(file, tensor, side, top);
}

/** readStoredDetail's reads, synchronous: under a millisecond for the ~0.7 MB (a bounded read, unlike the map's
 * 36 MB), where each awaited read on the thread pool of a loaded 2-core machine waited tens of ms for its turn. */
function readStoredDetailNow(file: string, tensor: string, side: number, top: number): MapPayload | undefined {
  let maps = MapsFile.cached(file);
  let where = storedDetailOf(maps, tensor, side, top);
  if (!where) return undefined;
  // Non-blocking open + regular-file check, as MapsFile.open: a FIFO put in its place cannot hang the host.
  const fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  try {
    const st = fs.fstatSync(fd);
    const id = identityOf(st);
    if (!st.isFile()) throw new Error(`${file}: not a regular file`);
    if (id !== maps.identity) {
      // Replaced since its header was read: the header of the file now open (or the map's own path, when it moves on).
      maps = MapsFile.cached(file);
      where = storedDetailOf(maps, tensor, side, top);
      if (!where || maps.identity !== id) return undefined;
    }
    const read = (at: Located, buffer: ArrayBuffer) => {
      if (fs.readSync(fd, new Uint8Array(buffer), 0, at.bytes, at.position) !== at.bytes) throw new Error(`${file}: stored detail of '${tensor}' is truncated`);
    };
    // Own buffers (not views of a shared one): each crosses to the webview as it is.
    const data = new Float32Array(where.detail.rows * where.detail.cols);
    read(where.detail, data.buffer);
    const { rows, cols } = maps.target(tensor);
    let min = Infinity;
    let max = -Infinity;
    for (const v of data) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (!Number.isFinite(min)) min = max = 0;
    const payload: MapPayload = { tensor, rows, cols, outRows: where.detail.rows, outCols: where.detail.cols, data, min, max };
    if (where.cols && where.mass) {
      const topCols = new Int32Array(where.cols.rows * where.cols.cols);
      const topMass = new Float64Array(where.mass.rows * where.mass.cols);
      read(where.cols, topCols.buffer);
      read(where.mass, topMass.buffer);
      payload.top = { k: where.cols.cols, cols: topCols, mass: topMass };
    }
    return payload;
  } finally {
    fs.closeSync(fd);
  }
}
