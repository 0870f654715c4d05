#!/usr/bin/env bash
# The default (auto-tuned) path at scale (issue 31 item 3): `otfuse fuse A B --data CALIB --no-eval` with no recipe
# flag (so the auto-tune runs, default budget) on the ViT-B/16 and BERT-base pairs from
# scripts/fixtures/make_scale.py (.cache/scale/), next to 400 plain forward passes of the same model in the same
# run (`otfuse eval A --data CALIB`, 200 samples, twice), each under /usr/bin/time -v: wall, CPU (user + sys) and
# peak RSS. Prints one JSON line per step and the ratio fuse / 400 forward passes (CPU and wall).
# Usage: npm run build --silent && bash bench/scale/default-path.sh [vitB] [bertB]
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=.cache/scale
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
measure() { # label, command…
  local label=$1; shift
  local log; log=$(mktemp)
  /usr/bin/time -v "$@" >"$log.out" 2>"$log" || { cat "$log" "$log.out" >&2; exit 1; }
  awk -v label="$label" -v load="$(cut -d' ' -f1 /proc/loadavg)" -F': ' '
    /User time/ {u=$2} /System time/ {s=$2} /Maximum resident/ {r=$2}
    /Elapsed \(wall clock\)/ {n=split($2,p,":"); w=(n==3? p[1]*3600+p[2]*60+p[3] : p[1]*60+p[2])}
    END {printf "{\"step\":\"%s\",\"wall_s\":%.1f,\"cpu_s\":%.1f,\"peak_rss_mb\":%.0f,\"load_1min_at_end\":%s}\n", label, w, u+s, r/1024, load}' "$log"
  grep -o '"autotune":{[^}]*"chosenLabel":"[^"]*"' "$log.out" | head -1 || true
  rm -f "$log" "$log.out"
}
for name in "${@:-vitB bertB}"; do
  for n in $name; do
    case $n in
      vitB) a=$dir/vitB_s1.onnx b=$dir/vitB_s2.onnx calib=$dir/calib_vit224_200.npz ;;
      bertB) a=$dir/bertB_s1.onnx b=$dir/bertB_s2.onnx calib=$dir/calib_bert_200.npz ;;
      *) echo "unknown case $n" >&2; exit 2 ;;
    esac
    measure "$n fuse (default path)" node dist/cli.js fuse "$a" "$b" --data "$calib" --no-eval --runs-dir "$runs" --json
    # run.json's stage seconds, capture record and the auto-tune's decision (where the fuse's time went)
    node -e 'const fs=require("fs"),p=require("path");const d=process.argv[1];for(const r of fs.readdirSync(d)){const f=p.join(d,r,"run.json");if(!fs.existsSync(f))continue;const j=JSON.parse(fs.readFileSync(f,"utf8"));console.log(JSON.stringify({run:r,timings:j.timings,capture:j.capture,autotune:j.autotune&&{chosenLabel:j.autotune.chosenLabel,trials:j.autotune.trials.map(t=>({label:t.label,estimate:t.estimate,cpuSeconds:t.cpuSeconds,skipped:t.skipped}))}}))}' "$runs"
    rm -rf "${runs:?}"/*
    measure "$n eval 200 (forward passes 1-200)" node dist/cli.js eval "$a" --data "$calib"
    measure "$n eval 200 (forward passes 201-400)" node dist/cli.js eval "$a" --data "$calib"
  done
done
