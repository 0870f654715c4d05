// The `Alignment` webview view: live progress of the running job, and for the selected run its accuracy table,
// per-layer overview chart, heatmaps and diagnostics. It subscribes to the run store (a change to the shown run
// re-sends it) and to the job runner; the webview asks for maps and actions through the request/reply contract.
import * as vscode from 'vscode';
import type { MapPayload, RunAction } from '../contracts/protocol';
import { mapsPath, type RunEntry } from '../worker/client';
import type { RunStore } from './runStore';
import type { JobRunner } from './jobs';
import { MapsFile, valueRange } from './safetensors';
import { defaultLayer, DETAIL_SIDE, DETAIL_TOP_K } from '../contracts/layers';
import { preparedMap, THUMB_PREFIX, warmMapThreads } from './mapThread';
import { DETAIL_PREFIX, readStoredDetail } from './storedDetail';
import { UserFirst } from './userFirst';
import { webviewHtml, webviewOptions } from './webviewHtml';
import { send, serve } from './webviewRpc';
import { saveWebviewFile } from './exports';

const THUMB = 96;
/** How long a run's thumbnails wait for its first heatmap to be asked for and sent. */
const FIRST_MAP_WAIT_MS = 1500;

export class AlignmentView implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly id = 'otfuse.alignment';
  private view?: vscode.WebviewView;
  private ready = false;
  private current?: RunEntry;
  /** The run last sent to this webview (a second request to show it, e.g. the Runs tree's selection and its
   * command for one click, sends nothing again). */
  private pushed?: string;
  private generation = 0;
  /** Maps the user waits on go before thumbnails (one channel to the webview: a reply posted behind 2 MB of
   * thumbnails arrives after them). */
  private readonly userFirst = new UserFirst();
  /** Runs sent to this webview since it was (re)loaded. */
  private readonly shownBefore = new Set<string>();
  private readonly disposables: vscode.Disposable[] = [];
  private readonly viewSubs: vscode.Disposable[] = [];
  /** Fires when the webview has been sent a run's record and thumbnails (for tests and Open Run). */
  private readonly shownEmitter = new vscode.EventEmitter<string>();
  readonly onShown = this.shownEmitter.event;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
    private readonly store: RunStore,
    private readonly jobs: JobRunner,
  ) {
    this.disposables.push(
      store.onDidChange((c) => {
        if (!this.current || (c.dir && c.dir !== this.current.dir)) return;
        const fresh = store.get(this.current.dir);
        if (!fresh.record && !fresh.error?.includes('ENOENT')) return; // half-visible write: keep what is shown
        this.current = fresh.record ? fresh : undefined;
        this.pushRun();
      }),
      jobs.onLive((live) => this.post({ type: 'live', live })),
      jobs.onBusyRuns((runDirs) => this.post({ type: 'busyRuns', runDirs })),
    );
  }

  get currentRun(): string | undefined {
    return this.current?.dir;
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    for (const d of this.viewSubs.splice(0)) d.dispose();
    this.view = view;
    this.ready = false;
    this.shownBefore.clear();
    view.webview.options = webviewOptions(this.extensionUri);
    view.webview.html = webviewHtml(view.webview, this.extensionUri, 'alignment', 'otfuse Alignment');
    this.viewSubs.push(
      serve(
        view.webview,
        {
          ready: () => {
            this.ready = true;

            this.post({ type: 'live', live: this.jobs.lastLive });
            this.post({ type: 'busyRuns', runDirs: this.jobs.busyRuns() });
            this.pushRun();
          },
          getMap: (p) => {
            if (this.current?.dir !== p.runDir) return null;
            const map = readMap(this.current, p.tensor, p.maxSide, this.log, p);
            return p.prefetch ? map : this.userFirst.wait(map);
          },
          getStoredMaps: async (p) => {
            await this.userFirst.idle(); // fetched ahead: after what the user waits on
            const entry = this.current;
            return entry?.dir === p.runDir ? readStoredMaps(entry, p.tensors, p.maxSide, p.top, this.log) : p.tensors.map(() => null);
          },
          action: (p) => this.action(p.action, p.runDir ?? this.current?.dir, p.tensor),
          saveFile: (p) => saveWebviewFile(p.suggestedName, p.bytes),
          dismissLive: (p) => this.jobs.dismiss(p.jobId),
        },
        this.log,
      ),
      view.onDidDispose(() => {
        this.view = undefined;
        this.ready = false;
      }),
    );
  }

  /** Shows a run (the user picked it). */
  async showRun(dir: string, reveal = true): Promise<void> {
    const again = this.ready && this.pushed === dir && this.current?.dir === dir;
    if (!again) this.current = this.store.get(dir);
    if (reveal) {
      if (this.view)
        this.view.show(true); // keep the focus where it is (e.g. the Runs tree)
      else await vscode.commands.executeCommand(`${AlignmentView.id}.focus`);
    }
    if (again) this.shownEmitter.fire(dir);
    else this.pushRun();
  }

  private async action(action: RunAction, runDir: string | undefined, tensor?: string): Promise<boolean> {
    const commands: Partial<Record<RunAction, string>> = {
      cancel: 'otfuse.cancelRun',
      finetuneRun: 'otfuse.quickFinetune',
      reevaluateRun: 'otfuse.reevaluateRun',
      reveal: 'otfuse.revealFusedModel',
      compare: 'otfuse.compareRuns',
      rerun: 'otfuse.rerunWithEdits',
      openLarge: 'otfuse.openMapLarge',
      exportMapCsv: 'otfuse.exportMapCsv',
      exportMapNpy: 'otfuse.exportMapNpy',
      exportAccuracyCsv: 'otfuse.exportAccuracyCsv',
      exportAccuracyMarkdown: 'otfuse.exportAccuracyMarkdown',
      openRecipe: 'otfuse.newRecipe',
      openSettings: 'otfuse.openProviderSettings',
    };
    const command = commands[action];
    if (!command) return false;
    if (action === 'cancel' || action === 'openRecipe' || action === 'openSettings') await vscode.commands.executeCommand(command);
    else if (runDir) await vscode.commands.executeCommand(command, runDir, tensor);
    return true;
  }

  private pushRun(): void {
    if (!this.ready) return;
    const entry = this.current;
    this.pushed = entry?.record ? entry.dir : undefined;
    if (!entry?.record) {
      this.post({ type: 'run', run: null });
      return;
    }
    // A run first shown in this view: the map of the layer the view opens it on (contracts/layers.ts) is sent right
    // after the run, unasked: a request from the view leaves it only once the view has built and laid out the run
    // (85–110 ms after the run arrived, for a ViT-B run in code-server). Its thumbnails wait until that map is
    // delivered (UserFirst; a run shown before likely has that map in the view's cache, and asks for nothing).
    const waitFirst = !this.shownBefore.has(entry.dir);
    if (waitFirst) this.userFirst.expectFirst();
    this.shownBefore.add(entry.dir);
    const first = waitFirst && entry.record.layers.length && mapsPath(entry) ? defaultLayer(entry.record.layers).tensor : undefined;
    this.post({ type: 'run', run: { runDir: entry.dir, record: entry.record }, ...(first ? { first } : {}) });
    // In a later turn: the channel to the view writes what is posted in one turn as one message, and the run must
    // not wait behind the map's 0.7 MB.
    if (first) setTimeout(() => this.sendFirst(entry, first).catch((err) => this.log.error(`sending the first map: ${err}`)), 0);
    // The maps threads start while the view renders the run, not when its first map is asked for; a run with stored
    // details (extension/storedDetail.ts) needs them only for "sort by match".
    if (!hasStoredDetails(entry)) warmMapThreads();
    void this.sendThumbnails(entry, waitFirst).finally(() => this.shownEmitter.fire(entry.dir));
  }

  /** The run's first map (the 'run' event named it), sent unasked; what the user waits on: thumbnails and fetches
   * ahead wait until it is delivered. null when the run is no longer shown or the map unreadable (the view asks). */
  private sendFirst(entry: RunEntry, tensor: string): Promise<void> {
    const sent = async () => {
      const map = this.current?.dir === entry.dir ? await readMap(entry, tensor, DETAIL_SIDE, this.log, { top: DETAIL_TOP_K }) : null;
      if (this.view && this.ready) await send(this.view.webview, { type: 'firstMap', runDir: entry.dir, tensor, map });
    };
    return this.userFirst.wait(sent());
  }

  /** Thumbnails of every map, read asynchronously (a big model has hundreds of MB of maps) and sent in batches. */
  private async sendThumbnails(entry: RunEntry, waitFirst: boolean): Promise<void> {
    const file = mapsPath(entry);
    if (!file || !entry.record?.layers.length) return;
    const token = ++this.generation;
    // The run's first heatmap (asked for as soon as the view has rendered the run) goes first.
    if (waitFirst) await this.userFirst.first(FIRST_MAP_WAIT_MS);
    try {
      const maps = MapsFile.cached(file);
      let batch: MapPayload[] = [];
      const flush = async () => {
        await this.userFirst.idle();
        if (token === this.generation && batch.length) this.post({ type: 'thumbnails', runDir: entry.dir, maps: batch });
        batch = [];
      };
      for (const layer of entry.record.layers) {
        if (token !== this.generation) return; // another run was selected meanwhile
        if (!maps.header[layer.tensor]) continue;
        batch.push(await thumbnail(maps, file, layer.tensor));
        if (batch.length >= 8) await flush();
      }
      await flush();
    } catch (err) {
      this.log.error(`reading ${file}: ${err instanceof Error ? err.message : err}`);
    }
  }

  private post(event: Parameters<typeof send>[1]): void {
    if (this.view && this.ready) void send(this.view.webview, event);
  }

  dispose(): void {
    for (const d of [...this.disposables, ...this.viewSubs]) d.dispose();
    this.shownEmitter.dispose();
  }
}

/** A map's thumbnail: the one fuse stored next to it (worker/fusion/mapthumbs.ts; 37 KB read) when the file has it,
 * else made from the map on the background thread (the selected layer's map, on the other, never waits behind it). */
async function thumbnail(maps: MapsFile, file: string, tensor: string): Promise<MapPayload> {
  const { rows, cols, position } = maps.target(tensor);
  const key = THUMB_PREFIX + tensor;
  const stored = maps.header[key]?.shape;
  // (A stored thumbnail of another size, e.g. from a future engine, is not used: the map is read instead.)
  if (stored?.[0] === Math.min(rows, THUMB) && stored[1] === Math.min(cols, THUMB)) {
    const t = maps.read(key); // 37 KB: at once, not a turn on the thread pool
    return { tensor, rows, cols, outRows: t.rows, outCols: t.cols, data: t.data, ...valueRange(t.data) };
  }
  return preparedMap({ file, position, rows, cols, tensor, maxSide: THUMB }, 'background');
}

/** One map of a run, down-sampled to at most maxSide per side (null when the run has no such map). The detail fuse
 * stored for it when the file has one of that size (extension/storedDetail.ts: a positioned read of ~0.7 MB, no
 * thread), else read, sorted, top-k'd and down-sampled on a worker thread (extension/mapThread.ts): a large (or
 * hostile) maps file never blocks the extension host, and only the drawn size crosses over. `prefetch`: a neighbour
 * fetched ahead (background). */
export async function readMap(
  entry: RunEntry,
  tensor: string,
  maxSide: number,
  log?: vscode.LogOutputChannel,
  options: { sort?: boolean; top?: number; prefetch?: boolean } = {},
): Promise<MapPayload | null> {
  const file = mapsPath(entry);
  if (!file) return null;
  try {
    const maps = MapsFile.cached(file);
    if (!maps.header[tensor]) return null;
    const side = clampSide(maxSide);
    if (!options.sort) {
      const stored = readStoredDetail(file, tensor, side, options.top ?? 0);
      if (stored) return stored;
    }
    const { rows, cols, position } = maps.target(tensor);
    const job = { file, position, rows, cols, tensor, maxSide: side, sort: !!options.sort, top: options.top || undefined };
    return await preparedMap(job, options.prefetch ? 'background' : 'now');
  } catch (err) {
    log?.error(`reading map '${tensor}' from ${file}: ${err instanceof Error ? err.message : err}`);
    return null;
  }
}

/** Whether the run's maps file carries the detail maps fuse stores (worker/fusion/mapdetail.ts). */
function hasStoredDetails(entry: RunEntry): boolean {
  try {
    const file = mapsPath(entry);
    return !!file && Object.keys(MapsFile.cached(file).header).some((k) => k.startsWith(DETAIL_PREFIX));
  } catch {
    return false;
  }
}

const clampSide = (maxSide: number) => Math.max(8, Math.min(2048, maxSide));

/** The stored detail maps of these layers (null where there is none: nothing is computed for them). */
function readStoredMaps(entry: RunEntry, tensors: string[], maxSide: number, top: number, log?: vscode.LogOutputChannel): (MapPayload | null)[] {
  const file = mapsPath(entry);
  const out: (MapPayload | null)[] = [];
  for (const tensor of tensors.slice(0, 64)) {
    try {
      out.push((file && readStoredDetail(file, tensor, clampSide(maxSide), top)) || null);
    } catch (err) {
      log?.error(`reading the stored detail of '${tensor}' from ${file}: ${err instanceof Error ? err.message : err}`);
      out.push(null);
    }
  }
  return out;
}
