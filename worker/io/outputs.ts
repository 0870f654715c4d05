// The one owner of what otfuse writes and deletes. Every output path goes through refuseOutputOverInputs (an
// output is never an input, inside an input folder, or a folder holding an input: real paths and inodes compared,
// so a symlink or a hard link to an input is the input) and checkOutputWritable (one code, BAD_USAGE, for an
// unwritable output in every command, before any work). Every folder otfuse creates (output folders, temp
// folders, run folders) holds an owner marker (OWNER_FILE); otfuse deletes or replaces a folder only when it holds
// that marker, never the current folder or a folder above it. A temp folder in use holds a lock file whose mtime a
// heartbeat thread refreshes (worker/io/lock.ts): cleanup removes a temp folder only when that lock is stale, which
// holds across PID namespaces, containers and hosts sharing a folder (a PID says nothing there).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OtfuseError } from '../errors';
import { describeErrno, readRegularFile } from '../onnx/files';
import { holdLock, lockIsFresh, LOCK_FILE, type HeldLock } from './lock';

export { LOCK_FILE };
/** The owner marker in every folder otfuse creates. A JSON file (no local paths in it: exported folders get shared). */
export const OWNER_FILE = '.otfuse-owner.json';
/** What kind of folder a marker says it is. */
export type OwnedKind = 'run' | 'run-temp' | 'hf-export' | 'temp';

const VERSION = '0.1.0';

/** One input of a command, for the overlap check; `what` names it in the error ("model", "dataset", "teacher"…). */
export interface InputRef {
  path: string;
  what: string;
}

/** The real path of `p`: symlinks resolved; for a path that does not exist yet, the nearest existing folder above
 * it resolved and the rest appended. */
function realTarget(p: string): string {
  const abs = path.resolve(p);
  try {
    return fs.realpathSync(abs);
  } catch {
    /* does not exist (or a dangling link): resolve the folder above */
  }
  const parent = path.dirname(abs);
  if (parent === abs) return abs;
  return path.join(realTarget(parent), path.basename(abs));
}

function inside(child: string, dir: string): boolean {
  const prefix = dir.endsWith(path.sep) ? dir : dir + path.sep;
  return child !== dir && child.startsWith(prefix);
}

function statOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch {
    return undefined;
  }
}

/**
 * Refuses (BAD_USAGE, before any work) an output that is an input, lies inside an input folder, or — for a folder
 * output — holds an input. `outputs` are the paths the command will write (a model and its `.data` side file, an
 * export folder); `inputs` every file and folder it reads.
 */
export function refuseOutputOverInputs(outputs: { path: string; folder?: boolean; flag?: string }[], inputs: InputRef[]): void {
  const ins = inputs
    .filter((i) => i.path)
    .map((i) => ({ ...i, real: realTarget(i.path), stat: statOrUndefined(i.path) }))
    .filter((i) => i.stat);
  for (const out of outputs) {
    const real = realTarget(out.path);
    const st = statOrUndefined(out.path);
    const flag = out.flag ?? '-o';
    for (const input of ins) {
      let why: string | undefined;
      if (real === input.real || (st && st.ino === input.stat!.ino && st.dev === input.stat!.dev)) why = `is the ${input.what} ${input.path}`;
      else if (input.stat!.isDirectory() && inside(real, input.real)) why = `lies inside the ${input.what} folder ${input.path}`;
      else if (out.folder && inside(input.real, real)) why = `is a folder that holds the ${input.what} ${input.path}`;
      if (why)
        throw new OtfuseError('BAD_USAGE', `${flag} ${out.path} ${why}; writing it would replace or change an input. Choose another output path`, {
          file: out.path,
        });
    }
  }
}

/** The paths a model argument reads: the file, and for a Hugging Face model the whole folder. */
export function modelInputs(model: string, what = 'input model'): InputRef[] {
  const out: InputRef[] = [
    { path: model, what },
    { path: `${model}.data`, what: `${what}'s external data` },
  ];
  const st = statOrUndefined(model);
  if (st?.isFile() && /\.safetensors$|\.safetensors\.index\.json$/.test(model)) out.push({ path: path.dirname(model), what: `${what} (Hugging Face folder)` });
  return out;
}

/** The paths a dataset argument reads: the data, its labels, tokenizer, preprocessor, and what a JSON spec names. */
export function dataInputs(arg: unknown, what = 'dataset'): InputRef[] {
  if (arg === undefined || arg === null) return [];
  const spec = (typeof arg === 'string' ? { path: arg } : arg) as Record<string, unknown>;
  const out: InputRef[] = [];
  for (const key of ['path', 'labels', 'tokenizer', 'preprocessor']) {
    if (typeof spec[key] === 'string') out.push({ path: spec[key], what: key === 'path' ? what : `${what} ${key}` });
  }
  const file = typeof spec.path === 'string' ? spec.path : '';
  if (file.endsWith('.json')) {
    // A dataset spec names its data and labels relative to itself (the reader checks the rest; a bad spec is
    // refused there, not here).
    try {
      const parsed = JSON.parse(Buffer.from(readRegularFile(file, 'BAD_DATA', 'dataset spec', 1 << 20)).toString('utf8')) as Record<string, unknown>;
      for (const key of ['path', 'labels']) {
        if (typeof parsed?.[key] === 'string') out.push({ path: path.resolve(path.dirname(file), parsed[key]), what: `${what} ${key}` });
      }
    } catch {
      /* not readable here: the dataset reader reports it */
    }
  }
  return out;
}

/** Fails now (BAD_USAGE, exit 2, the same in every command) when `target` cannot be written: a folder in its place
 * (or a file where a folder goes), or no write permission on the nearest existing folder above it. */
export function checkOutputWritable(target: string, what: string, isDir = false): void {
  const abs = path.resolve(target);
  const fail = (reason: string): never => {
    throw new OtfuseError('BAD_USAGE', `cannot write the ${what}: ${reason}`, { file: abs });
  };
  const st = statOrUndefined(abs);
  if (st && !isDir && st.isDirectory()) throw new OtfuseError('BAD_USAGE', `the ${what} is a folder`, { file: abs });
  if (st && isDir && !st.isDirectory()) fail('it is not a folder');
  let dir = st && isDir ? abs : path.dirname(abs);
  while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  try {
    if (!fs.statSync(dir).isDirectory()) fail(`${dir} is not a folder`);
    // access() ignores read-only mounts for root: probe with a real (hidden, removed at once) file.
    const probe = path.join(dir, `.otfuse-probe-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
    fs.writeFileSync(probe, '', { flag: 'wx' });
    fs.rmSync(probe, { force: true });
  } catch (err) {
    if (err instanceof OtfuseError) throw err;
    const e = err as NodeJS.ErrnoException;
    fail(`${describeErrno(e)}${e.code ? ` (${e.code})` : ''} in ${dir}`);
  }
}

/** Writes the owner marker into a folder otfuse just created (`replace`: change the kind of one it marked);
 * `files`: the names otfuse wrote in it (a folder holding anything else is not replaced wholesale). */
export function markOwned(dir: string, kind: OwnedKind, replace = false, files?: string[]): void {
  const marker = { otfuse: VERSION, kind, createdAt: new Date().toISOString(), ...(files ? { files } : {}) };
  fs.writeFileSync(path.join(dir, OWNER_FILE), JSON.stringify(marker) + '\n', { flag: replace ? 'w' : 'wx' });
}

/** The owner marker of `dir`, or undefined when `dir` is not a real folder that otfuse marked. */
function readMarker(dir: string): { kind: OwnedKind; files?: string[] } | undefined {
  try {
    const st = fs.lstatSync(dir);
    if (!st.isDirectory()) return undefined; // a symlink is never followed into
    const marker = path.join(dir, OWNER_FILE);
    if (!fs.lstatSync(marker).isFile()) return undefined; // not a link to some other file
    const parsed = JSON.parse(Buffer.from(readRegularFile(marker, 'BAD_DATA', 'owner marker', 1 << 16)).toString('utf8')) as Record<string, unknown>;
    if (typeof parsed?.otfuse !== 'string' || typeof parsed.kind !== 'string') return undefined;
    const files = Array.isArray(parsed.files) ? parsed.files.filter((f): f is string => typeof f === 'string') : undefined;
    return { kind: parsed.kind as OwnedKind, ...(files ? { files } : {}) };
  } catch {
    return undefined;
  }
}

function ownedKind(dir: string): OwnedKind | undefined {
  return readMarker(dir)?.kind;
}

/** The names in a folder otfuse is about to mark as written by it (its own marker and lock left out). */
function writtenNames(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n !== OWNER_FILE && n !== LOCK_FILE)
    .sort();
}

/** Why otfuse must not delete `dir` (undefined when it may): not marked as `kinds`, the current folder or a folder
 * above it, the home folder or the file-system root. */
function whyNotDeletable(dir: string, kinds: readonly OwnedKind[]): string | undefined {
  const abs = path.resolve(dir);
  let real: string;
  try {
    real = fs.realpathSync(abs);
  } catch {
    return 'it does not exist';
  }
  if (fs.lstatSync(abs).isSymbolicLink()) return 'it is a symbolic link';
  const cwd = realTarget(process.cwd());
  if (real === cwd || inside(cwd, real)) return 'it is the current folder or holds it';
  if (real === realTarget(os.homedir()) || path.dirname(real) === real) return 'it is the home folder or the root';
  const marker = readMarker(abs);
  if (!marker) return `it was not written by otfuse (no ${OWNER_FILE} in it)`;
  if (!kinds.includes(marker.kind)) return `otfuse wrote it as a ${marker.kind} folder, not as ${kinds.join(' or ')}`;
  if (marker.files) {
    const extra = writtenNames(abs).find((n) => !marker.files!.includes(n));
    if (extra !== undefined) return `it holds '${extra}', which otfuse did not write there`;
  }
  return undefined;
}

const TEMP_DIR = /^\..+\.tmp$/;

/** A temp folder otfuse works in: marked, locked (heartbeat) until released. */
export interface TempDir {
  dir: string;
  lock: HeldLock;
  /** Unlocks and removes the folder (and everything in it). */
  discard(): void;
}

/** The hidden temp name for a file or folder built next to `target`: `.<name>.<pid>.<random>.tmp`. */
function tempNameFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
}

/** Temp folders in use, removed when the process exits without giving them back (a second Ctrl-C, process.exit). */
const atExit = new Map<string, () => void>();
let exitHookInstalled = false;

function removeAtExit(dir: string, also?: () => void): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const fn of atExit.values()) {
        try {
          fn();
        } catch {
          /* best effort: the stale lock lets the next run clean it */
        }
      }
    });
  }
  atExit.set(dir, () => {
    fs.rmSync(dir, { recursive: true, force: true });
    also?.();
  });
}

/** Creates a marked, locked temp folder next to `target` (or at `dir` when given); `alsoAtExit` runs after the
 * folder is removed at an exit that did not give it back (e.g. to free a run's claim). */
export function makeTempDir(target: string, kind: 'temp' | 'run-temp' = 'temp', dir = tempNameFor(target), alsoAtExit?: () => void): TempDir {
  fs.mkdirSync(dir);
  let held: HeldLock;
  try {
    // Lock first, then the marker: a marked folder is never seen without its fresh lock.
    held = holdLock(dir);
    markOwned(dir, kind);
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  removeAtExit(dir, alsoAtExit);
  const lock: HeldLock = {
    file: held.file,
    release(movedTo?: string) {
      atExit.delete(dir);
      held.release(movedTo);
    },
  };
  return {
    dir,
    lock,
    discard() {
      lock.release();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** True when `dir` is a marked otfuse temp folder whose lock is missing or stale (its process is gone, wherever it
 * ran). */
function isStaleTemp(dir: string, kinds: readonly OwnedKind[] = ['temp', 'run-temp']): boolean {
  const kind = ownedKind(dir);
  return kind !== undefined && kinds.includes(kind) && !lockIsFresh(dir);
}

/** Removes the stale marked temp folders (see isStaleTemp) directly in `dir`; `before(tmpPath)` runs first for
 * each (e.g. to free what the temp folder claimed). Returns the paths removed. Unmarked folders are never touched. */
export function cleanStaleTempDirs(dir: string, kinds: readonly OwnedKind[] = ['temp', 'run-temp'], before?: (tmp: string) => void): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!TEMP_DIR.test(name)) continue;
    const p = path.join(dir, name);
    if (!isStaleTemp(p, kinds)) continue;
    try {
      before?.(p);
      fs.rmSync(p, { recursive: true, force: true });
      removed.push(p);
    } catch {
      /* raced with another cleaner */
    }
  }
  return removed;
}

/** Before any work on `export -o DIR [--force]`: DIR may be replaced only when --force is given and otfuse wrote it. */
export function checkReplaceableDir(output: string, force: boolean | undefined, kind: OwnedKind): void {
  const st = statOrUndefined(output);
  if (!st && !fs.existsSync(output)) return checkOutputWritable(output, 'output folder', true);
  if (!force) throw new OtfuseError('BAD_USAGE', 'the output folder exists (remove it or pass --force)', { file: output });
  const why = whyNotDeletable(output, [kind]);
  if (why) throw new OtfuseError('BAD_USAGE', `--force replaces only a folder otfuse wrote; not this one: ${why}`, { file: output });
  checkOutputWritable(output, 'output folder', true);
}

/**
 * Builds a folder in a marked, locked temp folder next to `target` and moves it into place when `fill` succeeds;
 * an existing `target` is replaced only when checkReplaceableDir allows it (checked again at the swap). On any
 * error nothing is left behind. The owner marker travels with the folder.
 */
export async function writeOwnedDir<T>(target: string, options: { force?: boolean; kind: OwnedKind }, fill: (dir: string) => Promise<T>): Promise<T> {
  const output = path.resolve(target);
  checkReplaceableDir(output, options.force, options.kind);
  cleanStaleTempDirs(path.dirname(output), ['temp']);
  let temp: TempDir;
  try {
    temp = makeTempDir(output, 'temp');
  } catch (err) {
    throw writeError(err, output);
  }
  try {
    const result = await fill(temp.dir);
    markOwned(temp.dir, options.kind, true, writtenNames(temp.dir));
    if (fs.existsSync(output)) {
      checkReplaceableDir(output, options.force, options.kind);
      const previous = readMarker(output);
      const old = tempNameFor(output);
      markOwned(output, 'temp', true); // under its temp name it is a stale temp folder if this process dies
      fs.renameSync(output, old);
      try {
        fs.renameSync(temp.dir, output);
      } catch (err) {
        fs.renameSync(old, output);
        markOwned(output, options.kind, true, previous?.files);
        throw err;
      }
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(temp.dir, output);
    }
    temp.lock.release(output); // the lock moved with the folder
    return result;
  } catch (err) {
    temp.discard();
    throw writeError(err, output);
  }
}

/** A file-system failure while writing `target`, as an IO error naming it. */
export function writeError(err: unknown, target: string): OtfuseError {
  if (err instanceof OtfuseError) return err;
  const e = err as NodeJS.ErrnoException;
  return new OtfuseError('IO', `cannot write: ${describeErrno(e)}${e?.code ? ` (${e.code})` : ''}`, { file: target });
}
