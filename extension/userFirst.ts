// What the user waits on goes first on the one channel to a webview (issue 31, "the panel never waits"): a map
// asked for by a click is answered before more thumbnails are posted, since a reply posted behind megabytes of
// thumbnails reaches the view only after them. `wait` wraps a request the user waits on; background senders
// await `idle()` before each post, and a run's thumbnails await `first()`: the run's first map answered (or a
// time limit, for a view that asks for none).
export class UserFirst {
  private busy = 0;
  private waiters: (() => void)[] = [];
  private firstDone?: () => void;
  private firstAnswered: Promise<void> = Promise.resolve();

  /** A run is being shown: the next request waited on is its first map. */
  expectFirst(): void {
    this.firstDone?.();
    this.firstAnswered = new Promise((resolve) => (this.firstDone = resolve));
  }

  /** Resolves when the first map since expectFirst() was answered, or after `limitMs`. */
  first(limitMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, limitMs)));
    return Promise.race([this.firstAnswered, limit]).finally(() => clearTimeout(timer));
  }

  /** `value`, counted as waited on until it settles. */
  async wait<T>(value: Promise<T>): Promise<T> {
    this.busy++;
    try {
      return await value;
    } finally {
      this.busy--;
      this.firstDone?.();
      this.firstDone = undefined;
      if (!this.busy) for (const w of this.waiters.splice(0)) w();
    }
  }

  /** Resolves when nothing the user waits on is in flight. */
  idle(): Promise<void> {
    return this.busy ? new Promise((resolve) => this.waiters.push(resolve)) : Promise.resolve();
  }
}
