// Memory helpers of the training loop (finetune.ts) for large models.
//
// PreviousParams: the parameters a step's loss was computed with before the update (the "last good" ones, written
// out if the next loss turns non-finite or explodes before any checkpoint was written). Small models keep them in
// memory; from SPOOL_PREVIOUS_BYTES up (a 124M GPT-2: 475 MiB, as much as the parameters themselves) they go to a temp
// file each step (worker/onnx/spool.ts: page cache, not the process's memory) and are read back only on divergence;
// the bytes are the same either way. Once a checkpoint has been written the copy is not needed any more (the
// divergence message points at that checkpoint instead) and is dropped.
//
// collectGarbage: onnxruntime-node returns every output as a fresh JS buffer (a parameter-sized gradient per step);
// V8 frees one when its garbage collector next runs, which may be after the next step has allocated the next ones,
// so two steps' gradients can be resident at once. From the same size up the trainer runs a full collection after
// each update, once the step's outputs are unreachable (V8's gc function, exposed at run time; ~10 ms a step).
import v8 from 'node:v8';
import vm from 'node:vm';
import { Spool } from '../onnx/spool';

/** From this many bytes of parameters the last good copy is spooled and a collection runs after each step. */
export const trainMemory = { spoolPreviousBytes: 64 * 2 ** 20 };

export class PreviousParams {
  private copy: Float32Array | undefined;
  private spool: Spool | undefined;
  private kept = false;
  private dropped = false;

  /** Large parameters (from trainMemory.spoolPreviousBytes): the copy is spooled, and the trainer collects garbage
   * after each step. */
  readonly spooled: boolean;

  constructor(private readonly length: number) {
    this.spooled = length * 4 >= trainMemory.spoolPreviousBytes;
    if (this.spooled) this.spool = new Spool('otfuse-last-good.spool');
    else this.copy = new Float32Array(length);
  }

  /** Keeps `params` as the last good parameters (replacing the previous ones). */
  keep(params: Float32Array): void {
    if (this.dropped) return;
    if (this.spool) {
      this.spool.release(); // a fresh file each step: the copy is always at offset 0
      this.spool.appendArray(params);
    } else this.copy!.set(params);
    this.kept = true;
  }

  /** The last good parameters (undefined before the first keep or after drop). */
  read(): Float32Array | undefined {
    if (!this.kept) return undefined;
    return this.spool ? this.spool.readArray(Float32Array, this.length, 0, 'the last good parameters') : this.copy;
  }

  /** Frees the copy for good (a checkpoint now stands for the last good parameters): keep is a no-op from now on. */
  drop(): void {
    this.release();
    this.spool = undefined;
    this.copy = undefined;
    this.kept = false;
    this.dropped = true;
  }

  release(): void {
    this.spool?.release();
  }
}

let gcFn: (() => void) | null | undefined;

/** A full garbage collection (frees the step's dropped output buffers); a no-op where V8 refuses to expose gc. */
export function collectGarbage(): void {
  if (gcFn === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as () => void;
    } catch {
      gcFn = null;
    }
  }
  gcFn?.();
}
