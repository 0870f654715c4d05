// Liveness of a folder otfuse works in, without PIDs: the folder holds LOCK_FILE, created exclusively, whose mtime
// a heartbeat thread refreshes every HEARTBEAT_MS. A lock whose mtime is older than STALE_MS belongs to a process
// that is gone (killed, or its host or container stopped). This holds across PID namespaces, containers and hosts
// sharing a folder, where `kill(pid, 0)` answers for another process or for none. The heartbeat runs in a worker
// thread, so long synchronous work on the main thread (a solver, a session run) does not let the lock go stale.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

export const LOCK_FILE = '.otfuse-lock.json';
export const HEARTBEAT_MS = 5_000;
/** A lock not refreshed for this long is stale (24 missed heartbeats: room for a suspended laptop's wake-up and for
 * clock skew between hosts sharing a folder). */
export const STALE_MS = 120_000;

// The heartbeat thread: keeps the mtime of every registered lock file fresh.
const HEARTBEAT_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const files = new Set();
parentPort.on('message', (m) => { if (m.add) files.add(m.add); if (m.remove) files.delete(m.remove); });
setInterval(() => {
  const now = new Date();
  for (const f of files) { try { fs.utimesSync(f, now, now); } catch { files.delete(f); } }
}, workerData.intervalMs);
`;

let heartbeat: Worker | undefined;
let fallback: NodeJS.Timeout | undefined;
const held = new Set<string>();

function touchAll(): void {
  const now = new Date();
  for (const f of held) {
    try {
      fs.utimesSync(f, now, now);
    } catch {
      /* the folder was moved or removed */
    }
  }
}

function beat(message: { add?: string; remove?: string }): void {
  if (!heartbeat && !fallback) {
    try {
      heartbeat = new Worker(HEARTBEAT_SOURCE, { eval: true, workerData: { intervalMs: HEARTBEAT_MS } });
      heartbeat.unref(); // never keeps the process alive
      heartbeat.on('error', () => {
        heartbeat = undefined; // the next lock starts a new one, with every held lock
      });
      for (const f of held) heartbeat.postMessage({ add: f });
    } catch {
      // No worker threads here: refresh from this thread (stale only when it is blocked for STALE_MS).
      fallback = setInterval(touchAll, HEARTBEAT_MS);
      fallback.unref();
    }
  }
  heartbeat?.postMessage(message);
}

export interface HeldLock {
  file: string;
  /** Stops the heartbeat and removes the lock file; `movedTo`: the folder the locked folder was renamed to. */
  release(movedTo?: string): void;
}

/** Creates `dir`/LOCK_FILE exclusively (EEXIST when another process holds it) and keeps it fresh until released. */
export function holdLock(dir: string): HeldLock {
  const file = path.join(dir, LOCK_FILE);
  fs.writeFileSync(file, JSON.stringify({ pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() }) + '\n', { flag: 'wx' });
  held.add(file);
  beat({ add: file });
  let released = false;
  return {
    file,
    release(movedTo?: string) {
      if (released) return;
      released = true;
      held.delete(file);
      beat({ remove: file });
      fs.rmSync(movedTo ? path.join(movedTo, LOCK_FILE) : file, { force: true });
    },
  };
}

/** True when `dir` holds a lock refreshed within STALE_MS (a live otfuse process works in it). */
export function lockIsFresh(dir: string, now = Date.now()): boolean {
  const file = path.join(dir, LOCK_FILE);
  if (held.has(file)) return true;
  try {
    return now - fs.lstatSync(file).mtimeMs < STALE_MS;
  } catch {
    return false;
  }
}
