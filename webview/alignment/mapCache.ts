// The Alignment view's detail maps, kept for a switch back and fetched ahead (issue 31, "the panel never waits"): a
// layer found here is drawn in the same frame as the click, with no request. Two ways ahead: the layers next to the
// selected one (the arrow keys' next stops; computed from the map when the run has no stored details), and, for a
// run whose maps file carries the details fuse stores (worker/fusion/mapdetail.ts), every layer's detail in the
// background once the run's first map and thumbnails are drawn (52 ViT-B layers: 33 MB, read by the host with
// positioned reads; batches of 2 so that a click's request never waits behind more than ~1.4 MB).
// Byte-bounded: at most MAX_BYTES of maps, each counted with the canvas its cells are coloured into (a 384² detail
// with its top-3 is 0.6–0.7 MB, its canvas 0.6 MB: ~75 of them; a ViT-B run's 52 fetched ahead are 64 MB); requests
// in flight are shared, so a click on a layer being fetched ahead waits for that answer (or the host's, if sooner);
// a click's request goes out at once, and no further batch is asked until it is answered (the view paints the
// layer's thumbnail meanwhile: webview/alignment/layers.ts).
import type { LayerMapInfo, MapPayload } from '../../contracts/protocol';
import { request } from '../rpc';
import * as perf from '../perf';

const MAX_BYTES = 96 * 2 ** 20;
/** A run's details are all fetched ahead when they come to at most this; else the nearest layers up to it. */
const RUN_AHEAD_BYTES = 64 * 2 ** 20;
const BATCH = 2;
const done = new Map<string, { map: MapPayload; bytes: number }>();
let total = 0;
const inFlight = new Map<string, Promise<MapPayload | null>>();

export interface MapAsk {
  runDir: string;
  tensor: string;
  maxSide: number;
  sort: boolean;
  top: number;
}

const keyOf = (a: MapAsk) => `${a.runDir}\n${a.tensor}\n${a.maxSide}\n${a.sort ? 'sorted' : 'raw'}\n${a.top}`;

/** Bytes a map's payload holds (what crossed from the host). */
export function payloadBytes(m: MapPayload): number {
  const arr = (a: unknown) => (ArrayBuffer.isView(a) ? a.byteLength : Array.isArray(a) ? 8 * a.length : 0);
  return m.data.byteLength + arr(m.rowOrder) + (m.top ? arr(m.top.cols) + arr(m.top.mass) : 0) + 256;
}

/** What the cache counts for a map: its payload and the canvas of its coloured cells (webview/heatmap.ts). */
const mapBytes = (m: MapPayload) => payloadBytes(m) + 4 * m.outRows * m.outCols;

/** The map when it is here already (most recently used from now on). */
export function cachedMap(a: MapAsk): MapPayload | undefined {
  const key = keyOf(a);
  const e = done.get(key);
  if (e) {
    done.delete(key);
    done.set(key, e);
  }
  return e?.map;
}

/** The host's answer for `a` (`prefetch`: a fetch ahead, read on the host's background thread). */
function askHost(a: MapAsk, prefetch?: boolean): Promise<MapPayload | null> {
  return request('getMap', {
    runDir: a.runDir,
    tensor: a.tensor,
    maxSide: a.maxSide,
    sort: a.sort,
    top: a.top,
    ...(prefetch !== undefined ? { prefetch } : {}),
  });
}

/** The map from the host (or the request already on its way); `prefetch`: fetched ahead, on the host's background
 * thread. */
export function fetchMap(a: MapAsk, prefetch = false): Promise<MapPayload | null> {
  const key = keyOf(a);
  const e = done.get(key);
  if (e) return Promise.resolve(e.map);
  const pending = inFlight.get(key);
  if (pending && !prefetch && !waitedOn.has(pending)) {
    // Fetched ahead but now waited on: ask the host too (its 'now' thread takes over a queued background read);
    // an answer of "none stored" from a fetch ahead waits for the host's.
    const now = askHost(a);
    return remember(key, Promise.race([pending.then((m) => m ?? now), now]), true);
  }
  if (pending) return pending;
  return remember(key, askHost(a, prefetch), !prefetch);
}

/** Maps the host sends unasked (a run's first: its 'run' event names it), and who waits for each. */
const pushed = new Map<string, (map: MapPayload | null) => void>();
/** How long a map the host said it sends is waited for before it is asked for. */
const PUSHED_WAIT_MS = 5000;

/** The host sends this map unasked: a fetch of it shares that answer instead of asking (and asks when the host sends
 * null or nothing in PUSHED_WAIT_MS). */
export function expectPushed(a: MapAsk): void {
  const key = keyOf(a);
  if (done.has(key) || inFlight.has(key)) return;
  const arrived = new Promise<MapPayload | null>((resolve) => {
    pushed.set(key, resolve);
    setTimeout(() => resolve(null), PUSHED_WAIT_MS);
  });
  remember(
    key,
    arrived.then((map) => {
      pushed.delete(key);
      return map ?? askHost(a);
    }),
    true,
  );
}

/** A map the host sent unasked arrived: to whoever waits for it, else into the cache. */
export function pushedMap(a: MapAsk, map: MapPayload | null): void {
  const resolve = pushed.get(keyOf(a));
  if (resolve) resolve(map);
  else if (map) keep(keyOf(a), map);
}

/** Requests asked for now (not ahead): a second ask shares them. */
const waitedOn = new WeakSet<Promise<MapPayload | null>>();

/** Requests waited on now, in flight, and the fetch ahead waiting for them to be answered. */
let nowPending = 0;
let nowIdle: (() => void)[] = [];
/** Resolves when no map waited on is in flight (a click's map is asked before the next batch fetched ahead). */
const waitedOnAnswered = () => (nowPending ? new Promise<void>((resolve) => nowIdle.push(resolve)) : Promise.resolve());

function remember(key: string, p: Promise<MapPayload | null>, now = false): Promise<MapPayload | null> {
  inFlight.set(key, p);
  if (now) {
    waitedOn.add(p);
    nowPending++;
  }
  const settle = (map: MapPayload | null) => {
    if (inFlight.get(key) === p) inFlight.delete(key);
    if (map) keep(key, map);
  };
  const done = () => {
    if (!now || --nowPending) return;
    const waiting = nowIdle;
    nowIdle = [];
    for (const w of waiting) w();
  };
  p.then(settle, () => {
    if (inFlight.get(key) === p) inFlight.delete(key);
  }).finally(done);
  return p;
}

function keep(key: string, map: MapPayload): void {
  const old = done.get(key);
  if (old) {
    done.delete(key);
    total -= old.bytes;
  }
  const bytes = mapBytes(map);
  done.set(key, { map, bytes });
  total += bytes;
  for (const [k, e] of done) {
    if (total <= MAX_BYTES) break;
    if (k === key) continue;
    done.delete(k);
    total -= e.bytes;
  }
}

/** The run being fetched ahead (once per showing of a run). */
let aheadRun: string | undefined;

/** Fetches the stored details of the run's layers ahead, nearest to the selected one first, in batches; stops when
 * the run has none (a run made before they were stored answers all null: nothing is computed for it), when another
 * run is shown (`current` false), or at RUN_AHEAD_BYTES. `arrived`: each map as it comes. */
export async function fetchRunAhead(
  ask: MapAsk,
  layers: readonly LayerMapInfo[],
  current: () => boolean,
  arrived: (map: MapPayload) => void = () => {},
): Promise<void> {
  if (ask.sort || aheadRun === ask.runDir) return;
  aheadRun = ask.runDir;
  const k = Math.max(
    0,
    layers.findIndex((l) => l.tensor === ask.tensor),
  );
  const order = layers.map((l, i) => ({ l, d: Math.abs(i - k) + (i < k ? 0.5 : 0) })).sort((a, b) => a.d - b.d);
  let budget = RUN_AHEAD_BYTES;
  const want: string[] = [];
  for (const { l } of order) {
    const bytes = 8 * Math.min(l.rows, ask.maxSide) * Math.min(l.cols, ask.maxSide) + 12 * ask.top * l.rows + 256;
    if (bytes > budget) break;
    budget -= bytes;
    want.push(l.tensor);
  }
  let answered = 0;
  for (let b = 0; b < want.length; b += BATCH) {
    await waitedOnAnswered(); // a layer clicked meanwhile is asked for (and answered) ahead of the next batch
    if (!current() || aheadRun !== ask.runDir) return;
    const tensors = want.slice(b, b + BATCH).filter((t) => !done.has(keyOf({ ...ask, tensor: t })) && !inFlight.has(keyOf({ ...ask, tensor: t })));
    if (!tensors.length) continue;
    const t0 = performance.now();
    const batch = request('getStoredMaps', { runDir: ask.runDir, tensors, maxSide: ask.maxSide, top: ask.top });
    tensors.forEach(
      (t, i) =>
        void remember(
          keyOf({ ...ask, tensor: t }),
          batch.then((maps) => maps[i] ?? null),
        ),
    );
    const maps = await batch.catch(() => [] as (MapPayload | null)[]);
    const got = maps.filter((m) => m).length;
    for (const m of maps) if (m) arrived(m);
    perf.aheadAnswered({ maps: got, bytes: maps.reduce((s, m) => s + (m ? payloadBytes(m) : 0), 0), ms: performance.now() - t0 });
    answered += got;
    if (!got && !answered) return; // no stored details in this run
  }
}

/** Another run is shown: its fetch ahead may start again when it is shown again. */
export function runShown(runDir: string | undefined): void {
  if (aheadRun !== runDir) aheadRun = undefined;
}
