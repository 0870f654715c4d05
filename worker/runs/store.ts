// The run folder's one owner: claims a unique run id before the work starts, builds the folder under a hidden
// temporary name and moves it into the claimed place at the end, patches run.json atomically, reads and lists
// runs, deletes only real otfuse run folders and cleans what killed runs left behind.
//
// Layout: <runsDir>/<id>/{run.json, fused.onnx, maps.safetensors, finetuned.onnx …}. While a run is being made,
// <runsDir>/<id>/ exists and is empty (the claim) and <runsDir>/.<id>.<pid>.<rand>.tmp/ holds the files, an owner
// marker and a lock (worker/io/outputs.ts); a run folder keeps its owner marker.
import fs from 'node:fs';
import path from 'node:path';
import { OtfuseError } from '../errors';
import { writeFileAtomic } from '../onnx/atomic';
import type { RunRecord } from '../types';
import { cleanStaleTempDirs, makeTempDir, markOwned, type TempDir } from '../io/outputs';
import type { HeldLock } from '../io/lock';
import { listRunFiles, readRunFile, RUN_FILE, type RunEntry } from './reader';

export { RUN_FILE, type RunEntry };
export const MAPS_FILE = 'maps.safetensors';
/** The files an otfuse run folder may hold; deleteRun refuses a folder with anything else in it. */
const RUN_FOLDER_FILES = /^(run\.json|fused\.onnx|finetuned\.onnx|maps\.safetensors|[\w.-]+\.onnx|[\w.-]+\.json|[\w.-]+\.safetensors|\.[\w.-]+\.tmp)$/;

export interface RunClaim {
  id: string;
  /** The run's name (file-name safe). */
  name: string;
  dir: string;
  /** The hidden folder the run is built in (moved onto `dir` by commit()). */
  tmp: string;
  /** The temp folder's lock (kept fresh while the run lives). */
  lock?: HeldLock;
}

function stamp(d = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** A file-name-safe run name. */
export function safeRunName(name: string): string {
  return (
    name
      .replace(/[^\w.-]+/g, '_')
      .replace(/^\.+/, '_')
      .slice(0, 120) || 'run'
  );
}

/** Claims a fresh run folder: `mkdir` without `recursive` fails when the name exists, so two processes that pick
 * the same time stamp get different ids (`…-2`, `…-3`). The temp folder (marked, locked: see worker/io/outputs.ts)
 * is made before the claim, so a claim is never seen without its live temp folder. Also checks that the runs folder
 * is writable, before any work. */
export function claimRun(runsDir: string, name: string, now = new Date()): RunClaim {
  const root = path.resolve(runsDir);
  const cannot = (err: unknown): OtfuseError =>
    new OtfuseError('BAD_USAGE', `cannot write in the runs folder (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { file: root });
  try {
    fs.mkdirSync(root, { recursive: true });
  } catch (err) {
    throw new OtfuseError('BAD_USAGE', `cannot create the runs folder: ${(err as Error).message}`, { file: root });
  }
  cleanStaleTemps(root);
  const base = `${stamp(now)}-${safeRunName(name)}`;
  for (let i = 1; i < 10000; i++) {
    const id = i === 1 ? base : `${base}-${i}`;
    const dir = path.join(root, id);
    if (fs.existsSync(dir)) continue;
    let temp: TempDir;
    try {
      temp = makeTempDir(dir, 'run-temp', undefined, () => freeClaim(dir));
    } catch (err) {
      throw cannot(err);
    }
    try {
      fs.mkdirSync(dir);
    } catch (err) {
      temp.discard();
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw cannot(err);
    }
    return { id, name: safeRunName(name), dir, tmp: temp.dir, lock: temp.lock };
  }
  throw new OtfuseError('BAD_USAGE', `too many runs named '${base}'`, { file: root });
}

/** Moves the finished temporary folder onto the claimed (empty) one; the folder keeps its owner marker. */
export function commitRun(claim: RunClaim): void {
  markOwned(claim.tmp, 'run', true);
  try {
    fs.renameSync(claim.tmp, claim.dir); // POSIX: replaces the empty claimed folder atomically
  } catch {
    fs.rmdirSync(claim.dir); // elsewhere: free the (still empty) claim first
    fs.renameSync(claim.tmp, claim.dir);
  }
  claim.lock?.release(claim.dir);
}

/** Gives a claim back: removes the temporary folder and the empty claimed folder. */
export function abandonRun(claim: RunClaim): void {
  claim.lock?.release();
  fs.rmSync(claim.tmp, { recursive: true, force: true });
  freeClaim(claim.dir);
}

/** Removes an empty claimed folder (rmdir: never one with anything in it). */
function freeClaim(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    /* already gone, or not empty (then not ours to remove) */
  }
}

/** Claims, fills the temporary folder with `fill`, commits; on any error nothing is left behind. */
export async function createRun<T>(runsDir: string, name: string, fill: (claim: RunClaim) => Promise<T>): Promise<T> {
  const claim = claimRun(runsDir, name);
  try {
    const result = await fill(claim);
    commitRun(claim);
    return result;
  } catch (err) {
    abandonRun(claim);
    throw err;
  }
}

/** Removes the temp folders of runs whose process is gone (a marked `run-temp` folder whose lock is stale: see
 * worker/io/lock.ts; no PID is trusted) and the empty claimed folder each one held. Unmarked folders are never
 * touched. Returns what it removed. */
export function cleanStaleTemps(runsDir: string): string[] {
  const removed: string[] = [];
  const gone = cleanStaleTempDirs(runsDir, ['run-temp'], (tmp) => {
    const id = /^\.(.+)\.\d+\.[0-9a-f]+\.tmp$/.exec(path.basename(tmp))?.[1];
    const claim = id ? path.join(runsDir, id) : undefined;
    if (claim && fs.existsSync(claim) && fs.readdirSync(claim).length === 0) {
      freeClaim(claim);
      removed.push(claim);
    }
  });
  return [...removed, ...gone];
}

/** Reads run.json: bounded, migrated from older formats, validated (worker/runs/reader.ts). */
export function readRun(dir: string): RunEntry {
  return readRunFile(dir);
}

/** Every run (folder with a run.json) in a runs folder, newest first. */
export function listRuns(runsDir: string): RunEntry[] {
  return listRunFiles(runsDir);
}

/** Writes run.json into a folder (temp file + rename: a reader never sees half a record). */
export function writeRecord(dir: string, record: RunRecord): void {
  writeFileAtomic(path.join(dir, RUN_FILE), JSON.stringify(record, null, 1) + '\n');
}

/** Reads run.json, applies `change` and writes it back atomically; returns the new record. */
export function patchRun(dir: string, change: (record: RunRecord) => RunRecord | void): RunRecord {
  const entry = readRun(dir);
  if (!entry.record) throw new OtfuseError('BAD_DATA', `not a readable otfuse run: ${entry.error}`, { file: path.join(dir, RUN_FILE) });
  const next = change(entry.record) ?? entry.record;
  writeRecord(dir, next);
  return next;
}

/** Resolves a path stored in run.json (absolute, or relative to the run folder). */
export function runPath(dir: string, p: string | undefined): string | undefined {
  if (!p) return undefined;
  return path.isAbsolute(p) ? p : path.join(dir, p);
}

/** The maps file of a run, when it exists. */
export function mapsPath(entry: RunEntry): string | undefined {
  const p = runPath(entry.dir, entry.record?.mapsFile ?? MAPS_FILE);
  return p && fs.existsSync(p) ? p : undefined;
}

/** Why `dir` is not an otfuse run folder that deleteRun may remove, or undefined when it is one. */
export function notARunFolder(dir: string): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch {
    return 'it does not exist';
  }
  if (st.isSymbolicLink()) return 'it is a symbolic link';
  if (!st.isDirectory()) return 'it is not a folder';
  const entry = readRun(dir);
  if (!entry.record) return `its run.json is not readable (${entry.error})`;
  const raw = entry.record as Partial<RunRecord>;
  if (typeof raw.versions?.otfuse !== 'string' || !Array.isArray(raw.layers) || !Array.isArray(raw.metrics)) return 'its run.json was not written by otfuse';
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!e.isFile() || !RUN_FOLDER_FILES.test(e.name)) return `it holds '${e.name}', which is not part of an otfuse run`;
  }
  return undefined;
}

/** Deletes a run folder, only when it is a real otfuse run (see notARunFolder). */
export function deleteRun(dir: string): void {
  const why = notARunFolder(dir);
  if (why) throw new OtfuseError('BAD_USAGE', `refusing to delete: ${why}`, { file: dir });
  fs.rmSync(dir, { recursive: true, force: false });
}
