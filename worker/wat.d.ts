// WebAssembly text modules, assembled at build time (esbuild.config.mjs, the 'wat' plugin): the import is the binary.
declare module '*.wat' {
  const bytes: Uint8Array;
  export default bytes;
}

// The part of the WebAssembly JS API the engine uses (Node has it globally; TypeScript declares it only in the DOM
// and web-worker libs, which the engine does not load).
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Memory {
    constructor(descriptor: { initial: number; maximum?: number });
    readonly buffer: ArrayBuffer;
    grow(pages: number): number;
  }
  class Instance {
    constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
}
