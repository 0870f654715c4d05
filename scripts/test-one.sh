#!/usr/bin/env bash
# Builds and runs one or more engine test files (test/**/*.test.ts) without building the whole project
# (same esbuild options as the full build, the .wat plugin included).
# Usage: bash scripts/test-one.sh test/ot/emd.test.ts [more files]
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t bundles < <(node scripts/test-one.mjs "$@")
node --enable-source-maps --test --test-concurrency=1 "${bundles[@]}"
