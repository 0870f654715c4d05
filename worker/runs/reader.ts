// The one reader of run.json: a regular file of bounded size (checked before a byte is read), parsed, migrated
// from older formats (migrate.ts) and validated against the run schema (schema.ts). A hostile or broken run.json
// becomes a RunEntry with the reason, never an exception. The async variant keeps the extension host free: the
// size check comes from stat, the read goes to libuv's pool, and runs are parsed one per turn of the event loop.
import fs from 'node:fs';
import path from 'node:path';
import { readRegularFileAndStat } from '../onnx/files';
import type { RunRecord } from '../types';
import { migrateRunRecord } from './migrate';
import { runSchemaError } from './schema';

export const RUN_FILE = 'run.json';
/** The largest run.json read. A real one is tens of KiB; a 100,000-step finetune logs 10,000 loss points, about
 * 0.5 MiB. Parsing and validating one at the limit holds the thread for tens of milliseconds. */
export const RUN_FILE_MAX_BYTES = 4 * 2 ** 20;

export interface RunEntry {
  dir: string;
  record?: RunRecord;
  error?: string;
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
const tooBig = (size: number) => `run.json is ${mib(size)}, over the ${mib(RUN_FILE_MAX_BYTES)} limit: not read`;

/** Parses, migrates and validates the bytes of a run.json. */
export function parseRunRecord(text: string, dir: string, mtime: Date): RunEntry {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    // Only the position: V8's message quotes the file's bytes, which must not reach the view (a link to a secret).
    const at = /position (\d+)/.exec((err as Error).message)?.[1];
    return { dir, error: `run.json is not JSON${at ? ` (syntax error at byte ${at})` : ' (truncated or not JSON)'}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { dir, error: 'run.json is not an object' };
  const record = migrateRunRecord(raw as Record<string, unknown>, dir, mtime);
  const why = runSchemaError(record);
  if (why) return { dir, error: `run.json does not fit the run schema: ${why}` };
  return { dir, record: record as unknown as RunRecord };
}

/** Reads one run folder's run.json (synchronously: the CLI and engine actions). */
export function readRunFile(dir: string): RunEntry {
  try {
    const { bytes, stat } = readRegularFileAndStat(path.join(dir, RUN_FILE), 'BAD_DATA', 'run record', RUN_FILE_MAX_BYTES);
    return parseRunRecord(Buffer.from(bytes).toString('utf8'), dir, stat.mtime);
  } catch (err) {
    return { dir, error: err instanceof Error ? err.message : String(err) };
  }
}

/** readRunFile off the calling thread: stat first (a FIFO, a device or an oversized file is refused without being
 * opened), then a non-blocking open and one bounded read in the thread pool. */
export async function readRunFileAsync(dir: string): Promise<RunEntry> {
  const file = path.join(dir, RUN_FILE);
  let handle: fs.promises.FileHandle | undefined;
  try {
    const st = await fs.promises.stat(file);
    if (!st.isFile()) return { dir, error: 'run.json is not a regular file' };
    if (st.size > RUN_FILE_MAX_BYTES) return { dir, error: tooBig(st.size) };
    handle = await fs.promises.open(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
    const opened = await handle.stat(); // the file that was opened, not the one stat saw
    if (!opened.isFile()) return { dir, error: 'run.json is not a regular file' };
    if (opened.size > RUN_FILE_MAX_BYTES) return { dir, error: tooBig(opened.size) };
    const buf = Buffer.alloc(opened.size);
    let done = 0;
    while (done < buf.length) {
      const { bytesRead } = await handle.read(buf, done, buf.length - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    await new Promise((r) => setImmediate(r)); // parse on a later turn: other host work runs between runs
    return parseRunRecord(buf.subarray(0, done).toString('utf8'), dir, opened.mtime);
  } catch (err) {
    return { dir, error: err instanceof Error ? err.message : String(err) };
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

const byDate = (a: RunEntry, b: RunEntry) => (b.record?.createdAt ?? path.basename(b.dir)).localeCompare(a.record?.createdAt ?? path.basename(a.dir));

function runDirs(runsDir: string, entries: fs.Dirent[]): string[] {
  return entries.filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => path.join(runsDir, d.name));
}

/** Every run (folder with a run.json) in a runs folder, newest first; unreadable ones with their reason. */
export function listRunFiles(runsDir: string): RunEntry[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(runsDir, { withFileTypes: true });
  } catch {
    return [];
  }
  return runDirs(runsDir, entries)
    .filter((d) => fs.existsSync(path.join(d, RUN_FILE)))
    .map(readRunFile)
    .sort(byDate);
}

/** listRunFiles without blocking the calling thread (the extension host). */
export async function listRunFilesAsync(runsDir: string): Promise<RunEntry[]> {
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(runsDir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: RunEntry[] = [];
  for (const dir of runDirs(runsDir, entries)) {
    const exists = await fs.promises.lstat(path.join(dir, RUN_FILE)).then(
      () => true,
      () => false,
    );
    if (exists) out.push(await readRunFileAsync(dir));
  }
  return out.sort(byDate);
}
