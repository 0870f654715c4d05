#!/usr/bin/env bash
# Builds and runs one or more engine test files (test/**/*.test.ts) without building the whole project
# (same esbuild options as the full build, the .wat plugin included).
# Usage: bash scripts/test-one.sh test/ot/emd.test.ts [more files]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$#" -gt 0 ] || { echo "usage: bash scripts/test-one.sh test/x/y.test.ts [more files]" >&2; exit 2; }
for f in "$@"; do
  case "$f" in *.test.ts) [ -f "$f" ] || { echo "test-one: no such test file: $f" >&2; exit 2; } ;; *) echo "test-one: not a test file (*.test.ts): $f" >&2; exit 2 ;; esac
done
# A failed build must not fall through to `node --test` with no files (which would run every test it finds).
bundles_list=$(node scripts/test-one.mjs "$@") || { echo "test-one: build failed" >&2; exit 1; }
mapfile -t bundles <<<"$bundles_list"
[ "${#bundles[@]}" -eq "$#" ] || { echo "test-one: expected $# bundles, got ${#bundles[@]}" >&2; exit 1; }
node --enable-source-maps --test --test-concurrency=1 "${bundles[@]}"
