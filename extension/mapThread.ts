// The panels' maps, prepared off the extension host's thread (issue 31, "the panel never waits"): a map is read
// once on a worker thread, sorted by match and its rows' top-k matches found there when asked, and down-sampled to
// the size it is drawn at before anything crosses to the host; the arrays come back as typed arrays moved
// (transferred), not copied. Two threads: one for what the user waits on (the selected layer's map), one for
// background work (thumbnails of a run being opened, neighbours fetched ahead), so a click never queues behind a
// run's 52 thumbnails. Finished payloads stay in a byte-bounded cache keyed by the file's identity (path, size,
// mtime), so a run opened again (or a layer shown again) costs no read.
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { MapPayload } from '../contracts/protocol';
import { downsample } from './safetensors';
import { matchOrder, permuteRows, topMatches } from './mapOrder';

export interface MapJob {
  file: string;
  /** Where the map's float32 data starts in the file, and its shape (validated by MapsFile). */
  position: number;
  rows: number;
  cols: number;
  tensor: string;
  maxSide: number;
  sort?: boolean;
  top?: number;
}

export type Lane = 'now' | 'background';

/** The prefix of the thumbnails fuse stores in maps.safetensors (worker/fusion/mapthumbs.ts THUMB_PREFIX). */
export const THUMB_PREFIX = 'thumb/';

/** `downsample` (extension/safetensors.ts) summed block by block: each cell's block of one row is added up in float64
 * before it joins the cell (instead of one float32 addition per entry through an index table), 3–5× faster on a
 * 3072² map; the means agree with downsample's to float32 rounding (within 1e-5 relative on 3072² → 96²: downsample's float32 sums of 1,024 entries are the less exact) and are exact copies when the
 * map fits. What the panels draw; the exports read the full map. */
export function blockMeans(tensor: string, rows: number, cols: number, data: Float32Array, maxSide: number): MapPayload {
  const outRows = Math.min(rows, maxSide);
  const outCols = Math.min(cols, maxSide);
  if (outRows === rows && outCols === cols) return downsample(tensor, rows, cols, data, maxSide);
  // Column block c holds the columns j with floor(j·outCols/cols) = c: from ceil(c·cols/outCols).
  const start = new Int32Array(outCols + 1);
  for (let c = 0; c <= outCols; c++) start[c] = c === outCols ? cols : Math.ceil((c * cols) / outCols);
  const rowCount = new Uint32Array(outRows);
  const acc = new Float64Array(outRows * outCols);
  for (let i = 0; i < rows; i++) {
    const r = Math.floor((i * outRows) / rows);
    rowCount[r]++;
    const o = r * outCols;
    const base = i * cols;
    for (let c = 0; c < outCols; c++) {
      let s = 0;
      const end = base + start[c + 1];
      for (let k = base + start[c]; k < end; k++) s += data[k];
      acc[o + c] += s;
    }
  }
  const out = new Float32Array(outRows * outCols);
  let min = Infinity;
  let max = -Infinity;
  for (let r = 0; r < outRows; r++)
    for (let c = 0; c < outCols; c++) {
      const n = rowCount[r] * (start[c + 1] - start[c]);
      out[r * outCols + c] = n ? acc[r * outCols + c] / n : 0;
      const v = out[r * outCols + c];
      if (v < min) min = v;
      if (v > max) max = v;
    }
  if (!Number.isFinite(min)) {
    min = 0;
    max = 0;
  }
  return { tensor, rows, cols, outRows, outCols, data: out, min, max };
}

/** The worker's whole program: the same functions the host would run (their source), a reader, typed results. */
function source(): string {
  return `const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const downsample = ${downsample.toString()};
const blockMeans = ${blockMeans.toString()};
const matchOrder = ${matchOrder.toString()};
const permuteRows = ${permuteRows.toString()};
const topMatches = ${topMatches.toString()};
parentPort.on('message', ({ id, job }) => {
  try {
    const data = new Float32Array(job.rows * job.cols);
    const fd = fs.openSync(job.file, 'r');
    try {
      const n = fs.readSync(fd, new Uint8Array(data.buffer), 0, data.byteLength, job.position);
      if (n !== data.byteLength) throw new Error(job.file + ": tensor '" + job.tensor + "' is truncated");
    } finally { fs.closeSync(fd); }
    const order = job.sort ? matchOrder(job.rows, job.cols, data) : undefined;
    const shown = order ? permuteRows(job.rows, job.cols, data, order) : data;
    const payload = blockMeans(job.tensor, job.rows, job.cols, shown, job.maxSide);
    const transfer = [payload.data.buffer];
    if (order) {
      payload.rowOrder = Int32Array.from(order);
      transfer.push(payload.rowOrder.buffer);
    }
    if (job.top) {
      const t = topMatches(job.rows, job.cols, data, job.top);
      payload.top = { k: t.k, cols: Int32Array.from(t.cols), mass: Float64Array.from(t.mass) };
      transfer.push(payload.top.cols.buffer, payload.top.mass.buffer);
    }
    parentPort.postMessage({ id, payload }, transfer);
  } catch (err) {
    parentPort.postMessage({ id, error: String((err && err.message) || err) });
  }
});`;
}

type Pending = { resolve: (p: MapPayload) => void; reject: (e: Error) => void };

/** One worker thread fed one job at a time from a queue in arrival order; `mayStart` holds the queue back (the
 * background thread waits while the user waits on the other one: on 2 cores they would share the CPU). */
class Thread {
  private worker?: Worker;
  private next = 0;
  private readonly queue: { id: number; job: MapJob; p: Pending }[] = [];
  private running?: { id: number; p: Pending };

  constructor(private readonly mayStart: () => boolean = () => true) {}

  get busy(): boolean {
    return !!this.running || this.queue.length > 0;
  }

  run(job: MapJob): Promise<MapPayload> {
    return new Promise((resolve, reject) => {
      this.queue.push({ id: ++this.next, job, p: { resolve, reject } });
      this.pump();
    });
  }

  /** Starts the thread ahead of its first job (a thread takes tens of ms to start: not on the first click). */
  warm(): void {
    this.start();
  }

  /** Starts the next job when none is running (and `mayStart` allows). */
  pump(): void {
    if (this.running || !this.queue.length || !this.mayStart()) return;
    const { id, job, p } = this.queue.shift()!;
    this.running = { id, p };
    const worker = this.start();
    worker.ref(); // kept alive while a job runs
    worker.postMessage({ id, job });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(source(), { eval: true });
    worker.unref();
    worker.on('message', (m: { id: number; payload?: MapPayload; error?: string }) => {
      const r = this.running;
      if (r?.id !== m.id) return;
      this.running = undefined;
      worker.unref();
      if (m.error !== undefined) r.p.reject(new Error(m.error));
      else r.p.resolve(m.payload!);
      this.done();
    });
    const fail = (err: Error) => {
      this.running?.p.reject(err);
      this.running = undefined;
      if (this.worker === worker) this.worker = undefined;
      this.done();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the maps reader thread exited (${code})`)));
    this.worker = worker;
    return worker;
  }

  private done(): void {
    this.pump();
    onIdle();
  }
}

/** Bytes a payload holds (what the cache counts). */
function payloadBytes(p: MapPayload): number {
  const arr = (a: unknown) => (ArrayBuffer.isView(a) ? a.byteLength : Array.isArray(a) ? 8 * a.length : 0);
  return p.data.byteLength + arr(p.rowOrder) + (p.top ? arr(p.top.cols) + arr(p.top.mass) : 0) + 256;
}

/** Byte-bounded LRU of finished (or in-flight) payloads. */
export class PayloadCache {
  private readonly entries = new Map<string, { value: Promise<MapPayload>; bytes: number; lane?: Lane }>();
  private total = 0;

  constructor(private readonly maxBytes: number) {}

  /** The cached payload, and whether it is still being computed (on which lane). */
  get(key: string): { value: Promise<MapPayload>; inFlight?: Lane } | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key); // most recently used last
    this.entries.set(key, e);
    return { value: e.value, inFlight: e.bytes ? undefined : e.lane };
  }

  /** Caches `value` under `key` once it resolves (a failed read is not kept). */
  add(key: string, value: Promise<MapPayload>, lane?: Lane): Promise<MapPayload> {
    const entry = { value, bytes: 0, lane };
    this.entries.set(key, entry);
    value.then(
      (p) => {
        if (this.entries.get(key) !== entry) return;
        entry.bytes = payloadBytes(p);
        this.total += entry.bytes;
        this.evict();
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    return value;
  }

  private evict(): void {
    for (const [key, e] of this.entries) {
      if (this.total <= this.maxBytes) break;
      if (!e.bytes) continue; // still in flight
      this.entries.delete(key);
      this.total -= e.bytes;
    }
  }

  get bytes(): number {
    return this.total;
  }

  clear(): void {
    this.entries.clear();
    this.total = 0;
  }
}

const now: Thread = new Thread();
const threads: Record<Lane, Thread> = { now, background: new Thread(() => !now.busy) };
/** Starts both threads (when a panel that shows maps opens). */
export function warmMapThreads(): void {
  now.warm();
  threads.background.warm();
}

/** A job finished: the background thread may go on once nothing waits on the other. */
function onIdle(): void {
  threads.background.pump();
}
/** 96 MiB: a ViT-B run's 100 thumbnails are 3.7 MB, a 384² detail map with its top-3 0.7 MB. */
export const cache = new PayloadCache(96 * 2 ** 20);

/** The prepared map of `job`, from the cache or computed on the lane's thread. */
export function preparedMap(job: MapJob, lane: Lane): Promise<MapPayload> {
  let id = '';
  try {
    const st = fs.statSync(job.file);
    id = `${job.file}|${st.size}|${st.mtimeMs}`;
  } catch {
    /* not cached: the thread reports the error */
  }
  const key = `${id}|${job.position}|${job.rows}×${job.cols}|${job.tensor}|${job.maxSide}|${job.sort ? 's' : ''}|${job.top ?? 0}`;
  const hit = id ? cache.get(key) : undefined;
  // Asked for now while a background thread has it queued (a neighbour fetched ahead): whichever comes first.
  if (hit?.inFlight === 'background' && lane === 'now') return cache.add(key, Promise.race([hit.value, threads.now.run(job)]), lane);
  if (hit) return hit.value;
  const value = threads[lane].run(job);
  return id ? cache.add(key, value, lane) : value;
}
