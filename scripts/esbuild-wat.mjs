// esbuild plugin: `import bytes from './x.wat'` — the WebAssembly text is assembled by wabt at build time and
// embedded as a Uint8Array (esbuild's binary loader), so the bundles carry no .wasm files and no assembler at run
// time. Used by every build that can reach the engine (esbuild.config.mjs, scripts/gen-recipe-schema.mjs).
import fs from 'node:fs';

export const watPlugin = {
  name: 'wat',
  setup(build) {
    build.onLoad({ filter: /\.wat$/ }, async (args) => {
      const wabt = await (await import('wabt')).default();
      // relaxed SIMD (f64x2.relaxed_madd) is accepted; the module that uses it enables it in V8 before compiling
      const parsed = wabt.parseWat(args.path, await fs.promises.readFile(args.path, 'utf8'), { relaxed_simd: true });
      try {
        parsed.validate();
        return { contents: parsed.toBinary({}).buffer, loader: 'binary' };
      } finally {
        parsed.destroy();
      }
    });
  },
};
