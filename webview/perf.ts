// How long the panel makes the user wait (issue 31 "the panel never waits"), measured inside the webview and read by
// the UI test (scripts/e2e/ui-panel.mjs): a heatmap switch from the user's click or key press (the event's time
// stamp) to the animation frame after the full detail map of that layer is drawn; a run's opening as wall-clock
// marks (Date.now(), comparable with the workbench's click time) for the run's arrival, the layer list, the first
// full heatmap and the last thumbnail. Nothing here changes what is drawn.

export interface SwitchTiming {
  tensor: string;
  ms: number;
  /** The detail map came from the webview's cache (no request to the extension). */
  cached: boolean;
  /** ms from the event until the extension's answer arrived (requests only): the rest of `ms` is drawing. */
  reply?: number;
  /** ms from the event to the frame after the layer's thumbnail was painted in the detail's place (only when the
   * detail was not here yet and the thumbnail was): the first paint of the switch; `ms` is the detail's. */
  placeholder?: number;
}

export interface OpenMarks {
  runDir: string;
  /** The 'run' event arrived. */
  run?: number;
  /** The layer cards were built. */
  list?: number;
  /** The first detail map was asked of the extension, and its answer arrived (Date.now()). */
  asked?: number;
  replied?: number;
  /** The first full (not thumbnail) detail heatmap was painted. */
  detail?: number;
  /** Every layer's thumbnail was painted. */
  thumbs?: number;
}

/** One request of the maps fetched ahead (webview/alignment/mapCache.ts): how many, their bytes, ms to the answer. */
export interface AheadTiming {
  maps: number;
  bytes: number;
  ms: number;
}

interface PerfWindow {
  otfusePanelPerf?: { switches: SwitchTiming[]; opens: OpenMarks[]; ahead?: AheadTiming[] };
}

const perf = ((window as unknown as PerfWindow).otfusePanelPerf ??= { switches: [], opens: [] });

/** A request of maps fetched ahead was answered. */
export function aheadAnswered(t: AheadTiming): void {
  (perf.ahead ??= []).push(t);
}
let pending: { tensor: string; t0: number; reply?: number; placeholder?: number } | undefined;

/** A switch to `tensor` started at `timeStamp` (an event's, same origin as performance.now()). */
export function switchStarted(tensor: string, timeStamp = performance.now()): void {
  pending = { tensor, t0: timeStamp };
}

/** The extension's answer for the switch to `tensor` arrived. */
export function replyArrived(tensor: string): void {
  if (pending?.tensor === tensor) pending.reply = performance.now() - pending.t0;
  const open = perf.opens.at(-1);
  if (open && open.asked !== undefined && open.replied === undefined) open.replied = Date.now();
}

/** A detail map was asked of the extension (the first one of a run's opening is marked). */
export function detailAsked(): void {
  const open = perf.opens.at(-1);
  if (open && open.detail === undefined && open.asked === undefined) open.asked = Date.now();
}

/** The detail canvas now shows `tensor` (`full`: the detail map, not the thumbnail standing in for it). */
export function detailDrawn(tensor: string, full: boolean, cached = false): void {
  const open = perf.opens.at(-1);
  if (full && open && open.detail === undefined) requestAnimationFrame(() => (open.detail ??= Date.now()));
  const p = pending;
  if (!p || p.tensor !== tensor) return;
  if (!full) {
    // The thumbnail stands in: its frame is the switch's first paint (registered before the detail's frame).
    if (p.placeholder === undefined) requestAnimationFrame(() => (p.placeholder ??= performance.now() - p.t0));
    return;
  }
  pending = undefined;
  requestAnimationFrame(() => {
    const extra = { ...(p.reply !== undefined ? { reply: p.reply } : {}), ...(p.placeholder !== undefined ? { placeholder: p.placeholder } : {}) };
    perf.switches.push({ tensor, ms: performance.now() - p.t0, cached, ...extra });
    document.body.dataset.switches = String(perf.switches.length);
  });
}

/** A run arrived (a new one: its opening is timed). */
export function runArrived(runDir: string): void {
  if (perf.opens.at(-1)?.runDir !== runDir) perf.opens.push({ runDir, run: Date.now() });
}

export function listBuilt(): void {
  const open = perf.opens.at(-1);
  if (open && open.list === undefined) requestAnimationFrame(() => (open.list ??= Date.now()));
}

export function thumbsDrawn(done: number, total: number): void {
  const open = perf.opens.at(-1);
  if (open && open.thumbs === undefined && done >= total) requestAnimationFrame(() => (open.thumbs ??= Date.now()));
}
