// The `Alignment` webview view: live progress of the running job, and for the selected run its aligned layers
// (one heatmap each), the selected layer's map with diagnostics, and the accuracy table/chart + loss curve.
import * as vscode from 'vscode';
import type { HostToWebview, LiveState, MapPayload, WebviewToHost } from '../webview/protocol';
import { mapsPath, readRun, RunEntry } from './runs';
import { MapsFile } from './safetensors';
import { webviewHtml, webviewOptions } from './webviewHtml';

const THUMB = 96;
const DETAIL = 384;

export class AlignmentView implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly id = 'otfuse.alignment';
  private view?: vscode.WebviewView;
  private ready = false;
  private current?: RunEntry;
  private live: LiveState | null = null;
  private generation = 0;
  private readonly disposables: vscode.Disposable[] = [];
  /** Resolves when the webview has rendered the given run (for tests and for the open-run command). */
  private readonly shownEmitter = new vscode.EventEmitter<string>();
  readonly onShown = this.shownEmitter.event;

  constructor(private readonly extensionUri: vscode.Uri, private readonly log: vscode.LogOutputChannel) {}

  get currentRun(): string | undefined { return this.current?.dir; }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.ready = false;
    view.webview.options = webviewOptions(this.extensionUri);
    view.webview.html = webviewHtml(view.webview, this.extensionUri, 'alignment', 'otfuse Alignment');
    this.disposables.push(
      view.webview.onDidReceiveMessage((m: WebviewToHost) => this.onMessage(m)),
      view.onDidDispose(() => { this.view = undefined; this.ready = false; }),
    );
  }

  /** Shows a run (reads run.json and the maps file again, so it also refreshes). */
  async showRun(dir: string, reveal = true): Promise<void> {
    this.current = readRun(dir);
    if (reveal) {
      if (this.view) this.view.show(true); // keep the focus where it is (e.g. the Runs tree)
      else await vscode.commands.executeCommand(`${AlignmentView.id}.focus`);
    }
    this.pushRun();
  }

  setLive(live: LiveState | null): void {
    this.live = live;
    this.post({ type: 'live', live });
  }

  private onMessage(m: WebviewToHost): void {
    switch (m.type) {
      case 'ready':
        this.ready = true;
        this.post({ type: 'live', live: this.live });
        this.pushRun();
        break;
      case 'selectLayer':
        if (this.current?.dir === m.runDir) void this.sendMap(m.tensor);
        break;
      case 'action':
        if (m.action === 'cancel') void vscode.commands.executeCommand('otfuse.cancelRun');
        else if (this.current && m.action === 'finetuneRun') void vscode.commands.executeCommand('otfuse.quickFinetune', this.current.dir);
        else if (this.current && m.action === 'reevaluateRun') void vscode.commands.executeCommand('otfuse.reevaluateRun', this.current.dir);
        else if (this.current && m.action === 'reveal') void vscode.commands.executeCommand('otfuse.revealFusedModel', this.current.dir);
        break;
    }
  }

  private pushRun(): void {
    if (!this.ready) return;
    const entry = this.current;
    if (!entry?.record) {
      this.post({ type: 'run', run: null });
      return;
    }
    this.post({ type: 'run', run: { runDir: entry.dir, record: entry.record } });
    void this.sendThumbnails(entry).finally(() => this.shownEmitter.fire(entry.dir));
  }

  /** Thumbnails of every map, read asynchronously (a big model has hundreds of MB of maps) and sent in batches. */
  private async sendThumbnails(entry: RunEntry): Promise<void> {
    const file = mapsPath(entry);
    if (!file || !entry.record?.layers.length) return;
    const token = ++this.generation;
    try {
      const maps = MapsFile.open(file);
      let batch: MapPayload[] = [];
      for (const layer of entry.record.layers) {
        if (token !== this.generation) return; // another run was selected meanwhile
        if (!maps.header[layer.tensor]) continue;
        batch.push(await maps.downsampledAsync(layer.tensor, THUMB));
        if (batch.length >= 8) { this.post({ type: 'thumbnails', runDir: entry.dir, maps: batch }); batch = []; }
      }
      if (batch.length) this.post({ type: 'thumbnails', runDir: entry.dir, maps: batch });
    } catch (err) {
      this.log.error(`reading ${file}: ${err instanceof Error ? err.message : err}`);
    }
  }

  private async sendMap(tensor: string): Promise<void> {
    const entry = this.current;
    const file = entry && mapsPath(entry);
    if (!entry || !file) return;
    try {
      this.post({ type: 'map', runDir: entry.dir, map: await MapsFile.open(file).downsampledAsync(tensor, DETAIL) });
    } catch (err) {
      this.log.error(`reading map '${tensor}' from ${file}: ${err instanceof Error ? err.message : err}`);
    }
  }

  private post(message: HostToWebview): void {
    if (this.view && this.ready) void this.view.webview.postMessage(message);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
    this.shownEmitter.dispose();
  }
}
