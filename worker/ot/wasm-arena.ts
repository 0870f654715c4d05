// What the WebAssembly SIMD kernels of the exact solvers share (pricing-wasm.ts for the network simplex, lap-wasm.ts
// for the linear assignment): compilation straight to V8's optimising tier, and one linear memory per kernel module
// that is grown on demand, kept between solves (fresh memory costs a page fault per 4 KiB) and dropped after
// `idleMs` without a solve.
import v8 from 'node:v8';

export const WASM_PAGE = 65536;
/** The most one 32-bit linear memory can address (less a page). */
export const WASM_MAX_BYTES = 2 ** 32 - WASM_PAGE;

/** The module compiled by V8's optimising compiler (its baseline tier runs these loops several times slower, and would
 * be swapped out only for later calls); null where the runtime refuses it (no WebAssembly SIMD). */
export function compileOptimised(bytes: Uint8Array): WebAssembly.Module | null {
  v8.setFlagsFromString('--no-liftoff');
  try {
    return new WebAssembly.Module(bytes);
  } catch {
    return null;
  } finally {
    v8.setFlagsFromString('--liftoff');
  }
}

/** One kernel module's instance over a memory that only grows, released after `idleMs` without a request. */
export class KernelArena<E> {
  private module: WebAssembly.Module | null | undefined;
  private held: { memory: WebAssembly.Memory; exports: E } | undefined;
  private idle: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly idleMs = 2000,
  ) {}

  /** The instance with at least `size` bytes of memory; undefined when the kernel cannot run here (no SIMD) or
   * the memory cannot be had (too large for one memory, or refused). */
  get(size: number): { memory: WebAssembly.Memory; exports: E } | undefined {
    if (this.module === undefined) this.module = compileOptimised(this.bytes);
    if (!this.module || size > WASM_MAX_BYTES) return undefined;
    const pages = Math.ceil(size / WASM_PAGE);
    try {
      if (!this.held) {
        const memory = new WebAssembly.Memory({ initial: pages });
        this.held = { memory, exports: new WebAssembly.Instance(this.module, { env: { mem: memory } }).exports as E };
      } else {
        const have = this.held.memory.buffer.byteLength / WASM_PAGE;
        if (have < pages) this.held.memory.grow(pages - have);
      }
    } catch {
      this.held = undefined;
      return undefined;
    }
    if (this.idle) clearTimeout(this.idle);
    this.idle = setTimeout(() => (this.held = undefined), this.idleMs);
    this.idle.unref();
    return this.held;
  }
}
