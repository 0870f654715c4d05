#!/usr/bin/env bash
# Does passing fewer calibration samples hurt when the token budget keeps only a share of their tokens? (issue 31,
# fusion/calibinputs.ts). At a reduced token budget B on the bundled pairs (17 tokens per image, 200 images), one-shot
# fusion (Sinkhorn 0.08 + regmean, the default path's recipe at scale) with all 200 images against the first
# ⌈2B/17⌉ only, 3 token seeds each; accuracy on held-out data the parents never saw (non-IID: the shared 2k; converged:
# the 2k test images). Run with a build from before the cap (then both rows are what they say: --samples 200 passes
# 200); with the cap, the "all" row passes ⌈2B/16⌉ images too. Writes TSV lines: pair, budget, samples, seed, metrics.
# Usage: npm run build --silent && bash bench/scale/sample-cap.sh > bench/scale/sample-cap.tsv
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
run() { # pair a b calib eval budget samples seed
  local r
  r=$(node dist/cli.js fuse "$2" "$3" --data "$4" --eval-data "$5" --solver sinkhorn --reg 0.08 --refit regmean \
    --token-budget "$6" --samples "$7" --token-seed "$8" --runs-dir "$runs" --json 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const m=JSON.parse(s).record.metrics;console.log(m.map(r=>r.role+"="+r.accuracy).join(" "))})')
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$6" "$7" "$8" "$r"
  rm -rf "${runs:?}"/*
}
for seed in 0 1 2; do
  for B in 256 512 1024; do
    for S in 200 $(((2 * B + 16) / 17)); do
      run noniid examples/noniid/noniid_pair_a.onnx examples/noniid/noniid_pair_b.onnx examples/noniid/calib200.json examples/noniid/shared-2k.json "$B" "$S" "$seed"
      run conv examples/vit48c_s20.onnx examples/vit48c_s21.onnx examples/calib200.npz examples/data/fmnist-test-2k.json "$B" "$S" "$seed"
    done
  done
done
