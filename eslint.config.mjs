// Lint: typescript-eslint's recommended rules over every TypeScript source (formatting is Prettier's job).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'dist-test/**', 'dist-bench/**', 'node_modules/**', '.e2e/**', '.cache/**', '.gpu/**', 'out/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // trust-read (issue 25): file access in the engine goes through its owners — worker/io/ (reads: regular files,
    // size limits, real-path containment, sanitised errors; outputs), worker/onnx/files.ts (descriptors) and
    // worker/onnx/atomic.ts (temp + rename). The other files listed still touch `fs` themselves: writers and temp
    // spools that belong to the output owner, and existence probes in modules other helpers own (see README,
    // "Threat model"). A new engine module gets no raw `fs`.
    files: ['worker/**/*.ts'],
    ignores: [
      'worker/io/**',
      'worker/onnx/files.ts',
      'worker/onnx/atomic.ts',
      'worker/onnx/external.ts',
      'worker/onnx/model.ts',
      'worker/onnx/spool.ts',
      'worker/data/source.ts',
      'worker/fusion/baselines.ts',
      'worker/fusion/mapstore.ts',
      'worker/fusion/runFolder.ts',
      'worker/runs/*.ts',
      'worker/runtime/providers.ts',
      'worker/hf/export.ts',
      'worker/hf/safetensors.ts',
      'worker/api.ts',
      'worker/cli.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['fs', 'node:fs', 'fs/promises', 'node:fs/promises'].map((name) => ({
            name,
            message: 'engine file access goes through worker/io/read.ts (reads) or the output owner (writes)',
          })),
        },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.name='require'][arguments.0.value=/^(node:)?fs(\\/promises)?$/]",
          message: 'engine file access goes through worker/io/read.ts (reads) or the output owner (writes)',
        },
      ],
    },
  },
  {
    // Tests drive VS Code commands whose results are untyped (`executeCommand` returns whatever the command does).
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
