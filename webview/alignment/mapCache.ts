// The Alignment view's detail maps, kept for a switch back and fetched ahead for the layers next to the selected one
// (issue 31, "the panel never waits"): a layer found here is drawn in the same frame as the click, with no request.
// At most MAX_MAPS maps (a 384² map with its top-3 is about 0.7 MB: ≤ 45 MB; each shown map brings its two
// neighbours, so 64 keep the last ~20 layers looked at); requests in flight are shared, so a click on a
// layer being fetched ahead waits for that answer instead of asking again.
import type { MapPayload } from '../../contracts/protocol';
import { request } from '../rpc';

const MAX_MAPS = 64;
const done = new Map<string, MapPayload>();
const inFlight = new Map<string, Promise<MapPayload | null>>();

export interface MapAsk {
  runDir: string;
  tensor: string;
  maxSide: number;
  sort: boolean;
  top: number;
}

const keyOf = (a: MapAsk) => `${a.runDir}\n${a.tensor}\n${a.maxSide}\n${a.sort ? 'sorted' : 'raw'}\n${a.top}`;

/** The map when it is here already (most recently used from now on). */
export function cachedMap(a: MapAsk): MapPayload | undefined {
  const key = keyOf(a);
  const map = done.get(key);
  if (map) {
    done.delete(key);
    done.set(key, map);
  }
  return map;
}

/** The map from the host (or the request already on its way); `prefetch`: fetched ahead, on the host's background
 * thread. */
export function fetchMap(a: MapAsk, prefetch = false): Promise<MapPayload | null> {
  const key = keyOf(a);
  const map = done.get(key);
  if (map) return Promise.resolve(map);
  const pending = inFlight.get(key);
  if (pending && !prefetch) {
    // Fetched ahead but now waited on: ask the host too (its 'now' thread takes over a queued background read).
    const now = request('getMap', { runDir: a.runDir, tensor: a.tensor, maxSide: a.maxSide, sort: a.sort, top: a.top });
    return remember(key, Promise.race([pending, now]));
  }
  if (pending) return pending;
  return remember(key, request('getMap', { runDir: a.runDir, tensor: a.tensor, maxSide: a.maxSide, sort: a.sort, top: a.top, prefetch }));
}

function remember(key: string, p: Promise<MapPayload | null>): Promise<MapPayload | null> {
  inFlight.set(key, p);
  const settle = (map: MapPayload | null) => {
    if (inFlight.get(key) === p) inFlight.delete(key);
    if (!map) return;
    done.set(key, map);
    for (const old of done.keys()) {
      if (done.size <= MAX_MAPS) break;
      done.delete(old);
    }
  };
  p.then(settle, () => {
    if (inFlight.get(key) === p) inFlight.delete(key);
  });
  return p;
}
