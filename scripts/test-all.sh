#!/usr/bin/env bash
# The README's test command: build, engine tests (node:test), then the real-editor suites when present.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build --silent
npm run test:engine
