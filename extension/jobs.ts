// Long work (fuse, evaluate, finetune): a progress notification with cancel where it started, a status bar item,
// log lines in the output channel, and live state for the Alignment view. One job per run at a time; `Cancel Run`
// aborts what is running.
import * as vscode from 'vscode';
import { OtfuseError } from '../worker/client';
import type { ProgressEvent } from '../worker/types';
import type { LiveState } from '../contracts/protocol';
import { progressLine, stageName, timeText } from '../contracts/progress';

export interface Job {
  id: number;
  title: string;
  controller: AbortController;
  live: LiveState;
}

export interface JobOptions {
  /** The run folder the job works on: a second job on the same run is refused while this one runs. */
  runDir?: string;
  /** How long the same job took last time (seconds): the overall ETA. */
  expectedSeconds?: number;
}

export class JobRunner implements vscode.Disposable {
  private readonly jobs = new Map<number, Job>();
  private counter = 0;
  private readonly status: vscode.StatusBarItem;
  private readonly liveEmitter = new vscode.EventEmitter<LiveState | null>();
  readonly onLive = this.liveEmitter.event;
  private readonly busyEmitter = new vscode.EventEmitter<string[]>();
  /** Fires with the run folders that have a job in progress. */
  readonly onBusyRuns = this.busyEmitter.event;
  lastLive: LiveState | null = null;

  constructor(private readonly log: vscode.LogOutputChannel) {
    this.status = vscode.window.createStatusBarItem('otfuse.job', vscode.StatusBarAlignment.Left, 50);
    this.status.name = 'otfuse job';
    // From the status bar a click cancels only after a confirmation (a stray click must not lose a long job).
    this.status.command = { command: 'otfuse.cancelRun', title: 'Cancel', arguments: [{ confirm: true }] };
  }

  get busy(): boolean {
    return this.jobs.size > 0;
  }

  busyRuns(): string[] {
    return [...new Set([...this.jobs.values()].map((j) => j.live.runDir).filter((d): d is string => !!d))];
  }

  isRunBusy(dir: string): boolean {
    return this.busyRuns().includes(dir);
  }

  /** Runs `work` with progress + cancel; errors propagate (callers show them). */
  async run<T>(
    title: string,
    work: (ctx: { signal: AbortSignal; onProgress: (e: ProgressEvent) => void }) => Promise<T>,
    options: JobOptions = {},
  ): Promise<T> {
    if (options.runDir && this.isRunBusy(options.runDir)) {
      throw new OtfuseError('BAD_USAGE', 'a job is already running on this run: wait for it or cancel it first', { file: options.runDir });
    }
    const id = ++this.counter;
    const job: Job = {
      id,
      title,
      controller: new AbortController(),
      live: {
        jobId: id,
        title,
        runDir: options.runDir,
        stage: 'start',
        layersDone: [],
        loss: [],
        state: 'running',
        startedAt: Date.now(),
        stageStartedAt: Date.now(),
        ...(options.expectedSeconds ? { expectedSeconds: options.expectedSeconds } : {}),
      },
    };
    this.jobs.set(job.id, job);
    this.update(job);
    if (options.runDir) this.busyEmitter.fire(this.busyRuns());
    this.log.info(`${title}: started`);
    const started = Date.now();
    try {
      return await vscode.window
        .withProgress({ location: vscode.ProgressLocation.Notification, title: `otfuse: ${title}`, cancellable: true }, async (progress, token) => {
          token.onCancellationRequested(() => job.controller.abort());
          let lastPct = 0;
          const onProgress = (e: ProgressEvent) => {
            const live = job.live;
            // A new stage (or the baseline phase of a finetune) restarts the stage clock and its percentage.
            if (stageName(e.stage, e.message ?? live.message) !== stageName(live.stage, live.message)) live.stageStartedAt = Date.now();
            live.stage = e.stage;
            live.message = e.message ?? live.message;
            live.done = e.done;
            live.total = e.total;
            if (e.layer && e.layer !== live.layer) {
              if (live.layer && !live.layersDone.includes(live.layer)) live.layersDone.push(live.layer);
              live.layer = e.layer;
            }
            if (e.stage === 'finetune' && e.metrics?.loss !== undefined)
              live.loss.push({ step: e.metrics.step ?? e.done ?? live.loss.length, loss: e.metrics.loss });
            const pct = e.total ? Math.round((100 * (e.done ?? 0)) / e.total) : undefined;
            const text = [stageName(e.stage, live.message), e.layer, e.message, pct !== undefined ? `${pct}%` : ''].filter(Boolean).join(' · ');
            progress.report({ message: text, increment: pct !== undefined && pct >= lastPct ? pct - lastPct : undefined });
            if (pct !== undefined) lastPct = pct;
            if (e.message || e.layer) this.log.info(`${title}: ${text}`);
            this.update(job);
          };
          return work({ signal: job.controller.signal, onProgress });
        })
        .then((value) => {
          job.live.state = 'done';
          this.log.info(`${title}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
          return value;
        });
    } catch (err) {
      const code = (err as { code?: string }).code;
      job.live.state = code === 'CANCELLED' ? 'cancelled' : 'failed';
      // The engine's advice for the CLI ("Use --provider …") means nothing in the editor.
      job.live.error = (err instanceof Error ? err.message : String(err)).replace(/\s*Use --provider[^.]*\.?/, '');
      this.log.error(`${title}: ${job.live.state}: ${job.live.error}`);
      throw err;
    } finally {
      this.jobs.delete(job.id);
      this.update(job);
      if (options.runDir) this.busyEmitter.fire(this.busyRuns());
    }
  }

  /** What is running (for the cancel confirmation). */
  titles(): string[] {
    return [...this.jobs.values()].map((j) => j.title);
  }

  /** Aborts every running job; returns how many. */
  cancelAll(): number {
    const n = this.jobs.size;
    for (const job of this.jobs.values()) job.controller.abort();
    if (n) this.log.info(`cancel requested for ${n} job(s)`);
    return n;
  }

  /** Forgets a finished job's state (the view's Dismiss button). */
  dismiss(jobId: number): void {
    if (this.lastLive?.jobId === jobId && this.lastLive.state !== 'running') {
      this.lastLive = null;
      this.liveEmitter.fire(null);
    }
  }

  private update(job: Job): void {
    const running = [...this.jobs.values()];
    void vscode.commands.executeCommand('setContext', 'otfuse.busy', running.length > 0);
    if (running.length) {
      const j = running[running.length - 1];
      const l = j.live;
      const pct = l.total ? ` ${Math.round((100 * (l.done ?? 0)) / l.total)}%` : '';
      const time = timeText(Date.now(), { startedAt: l.startedAt!, stageStartedAt: l.stageStartedAt!, expectedSeconds: l.expectedSeconds }, l.done, l.total);
      this.status.text = `$(sync~spin) otfuse: ${stageName(l.stage, l.message)}${pct}${time.left ? ` · ${time.left} left` : ''}`;
      this.status.tooltip = `${j.title}${l.layer ? ` — ${l.layer}` : ''}\n${progressLine(Date.now(), { startedAt: l.startedAt!, stageStartedAt: l.stageStartedAt!, expectedSeconds: l.expectedSeconds }, l.stage, l.message, l.done, l.total)}\nClick to cancel (asks first)`;
      this.status.show();
    } else {
      this.status.hide();
    }
    this.lastLive = { ...job.live, layersDone: [...job.live.layersDone], loss: [...job.live.loss] };
    this.liveEmitter.fire(this.lastLive);
  }

  dispose(): void {
    this.cancelAll();
    this.status.dispose();
    this.liveEmitter.dispose();
    this.busyEmitter.dispose();
  }
}
