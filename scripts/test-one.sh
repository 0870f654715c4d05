#!/usr/bin/env bash
# Builds and runs one or more engine test files (test/**/*.test.ts) without building the whole project.
# Usage: bash scripts/test-one.sh test/ot/emd.test.ts [more files]
set -euo pipefail
# Output inside the repo so bundles resolve node_modules (onnxruntime-node stays external).
mkdir -p .cache/test-one && out=$(mktemp -d .cache/test-one/run.XXXXXX)
files=()
for f in "$@"; do
  base=$(basename "$f" .ts)
  npx --no-install esbuild "$f" --bundle --platform=node --target=node20 --format=cjs --external:onnxruntime-node --external:vscode --sourcemap --log-level=warning --outfile="$out/$base.js"
  files+=("$out/$base.js")
done
node --enable-source-maps --test --test-concurrency=1 "${files[@]}"
