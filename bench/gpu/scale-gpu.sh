#!/usr/bin/env bash
# ViT-B/16 fuse on the GPU device machine (issue 16, acceptance: ≤ 20 s). Prepared for one device `run` call:
#   here:   npm run build --silent && /usr/bin/python3 scripts/fixtures/make_scale.py --only vitB   (on the device
#           machine python3 + torch exist too; the fixtures are ~700 MB, too large to carry: make them there)
#           bash ../shared/gpu/pack.sh
#   device: run(command="bash bench/gpu/scale-gpu.sh", carry=[".gpu", "dist", "dist-bench"], timeout_s=540)
# It writes $OUT/scale-gpu.json (one row per provider: wall, CPU, peak RSS, stage timings) and the CPU row for
# comparison. webgpu runs capture and the cost/alignment products in float32 on the GPU (no float64 kernels);
# cuda is tried when its libraries exist and falls back to CPU inside ONNX Runtime otherwise.
set -euo pipefail
OUT=${OUT:-.cache/gpu-out}
mkdir -p "$OUT"
if [ -f .gpu/enter.sh ]; then source .gpu/enter.sh; fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
[ -f .cache/scale/manifest.json ] || python3 scripts/fixtures/make_scale.py --only vitB
for p in webgpu cpu; do
  node dist-bench/scale/scale.bench.js --cases vitB@200 --out "$OUT/scale-$p.md" --json "$OUT/scale-$p.json" -- --provider "$p" || echo "provider $p failed"
done
