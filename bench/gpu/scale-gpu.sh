#!/usr/bin/env bash
# The GPU scale check (issue 31 item 6) in one device `run` call: ViT-B/16 and GPT-2-small (124M) fused and
# finetuned on CUDA and WebGPU next to CPU, one JSON ($OUT/scale-check.json: times, peak RSS, CPU/GPU agreement of
# maps, fused weights and finetune losses) from bench/gpu/scale-check.ts. Sized for 10 minutes on a GPU machine.
#   here:   npm run build --silent   (and bash ../shared/gpu/pack.sh when the device needs the .gpu runtime)
#   device: run(command="bash bench/gpu/scale-gpu.sh", carry=[".gpu", "dist", "dist-bench"], timeout_s=590)
# The fixtures (~1.5 GB) are too large to carry: they are made there (python3 + torch exist on the device machine).
# On a machine without a GPU: PROVIDERS=cpu SAMPLES=16 STEPS=2 bash bench/gpu/scale-gpu.sh (checked end to end).
set -euo pipefail
OUT=${OUT:-.cache/gpu-out}
mkdir -p "$OUT"
if [ -f .gpu/enter.sh ]; then source .gpu/enter.sh; fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
CASES=${CASES:-vitB,gpt2}
# A python with torch: the first of these that imports it (Debian's /usr/bin/python3 here, python3 on the device).
py=python3
for cand in python3 /usr/bin/python3; do
  if command -v "$cand" >/dev/null && "$cand" -c 'import torch' 2>/dev/null; then py=$cand; break; fi
done
case ",$CASES," in *,vitB,*) [ -f .cache/scale/vitB_s1.onnx ] || "$py" scripts/fixtures/make_scale.py --only vitB ;; esac
case ",$CASES," in *,gpt2,*)
  if [ ! -d .cache/decoders-scale/gpt2-124m-s0 ] && [ -f bench/decoders/make_scale.py ]; then
    { [ -x /work/wt/venv-hf/bin/python ] && /work/wt/venv-hf/bin/python bench/decoders/make_scale.py --only gpt2 || "$py" bench/decoders/make_scale.py --only gpt2; } || echo "GPT-2 fixtures could not be made: the gpt2 rows say so"
  fi ;;
esac
node dist-bench/gpu/scale-check.js --providers "${PROVIDERS:-cpu,cuda,webgpu}" --cases "$CASES" \
  --samples "${SAMPLES:-200}" --steps "${STEPS:-50}" --out "$OUT"
