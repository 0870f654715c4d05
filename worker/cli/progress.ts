// A progress line on stderr, only when stderr is a terminal (scripts and CI get clean output).
import type { ProgressEvent } from '../types';

export class ProgressBar {
  private readonly enabled: boolean;
  private lastDraw = 0;
  private width = 0;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.enabled = Boolean(stream.isTTY);
  }

  update(event: ProgressEvent): void {
    if (!this.enabled) return;
    const now = Date.now();
    const finished = event.total !== undefined && event.done === event.total;
    if (now - this.lastDraw < 80 && !finished) return;
    this.lastDraw = now;
    let line = `${event.stage}`;
    if (event.total) {
      const frac = Math.min(1, (event.done ?? 0) / event.total);
      const cells = 24;
      const filled = Math.round(frac * cells);
      line += ` [${'#'.repeat(filled)}${'.'.repeat(cells - filled)}] ${event.done ?? 0}/${event.total}`;
    }
    if (event.layer) line += ` ${event.layer}`;
    if (event.message) line += ` ${event.message}`;
    if (event.metrics)
      line +=
        ' ' +
        Object.entries(event.metrics)
          .map(([k, v]) => `${k}=${formatNumber(v)}`)
          .join(' ');
    // A pseudo-terminal without a size reports 0 columns.
    const columns = this.stream.columns && this.stream.columns > 20 ? this.stream.columns : 100;
    line = line.slice(0, columns - 1);
    this.stream.write(`\r${line}${' '.repeat(Math.max(0, this.width - line.length))}`);
    this.width = line.length;
  }

  done(): void {
    if (this.enabled && this.width > 0) this.stream.write(`\r${' '.repeat(this.width)}\r`);
    this.width = 0;
  }
}

function formatNumber(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(4);
}
