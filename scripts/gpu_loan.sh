#!/usr/bin/env bash
# What one call to a lent GPU machine runs (prepared and tested here; there it only runs):
#   1. a short check that the app's inference path runs on CUDA: latency and the format auto picks;
#   2. the training stage on the chunks carried with the call, from the shipped fashion model (or
#      --resume of a stage folder carried with it), ending on time;
#   3. everything to $OUT: the stage's files (G, its EMA and D in fp16, split under 16 MiB; stage.json)
#      and the check's log (with the GPU's busy share): 7 files, about 45 MB.
# Carry the chunks: `run` with carry ["gpu/chunks"] (one chunk of ~19 MB fits beside the repository).
# Usage there: bash scripts/gpu_loan.sh [SECONDS_FOR_THE_STAGE] [extra gpu_stage.py run flags]
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_STAGE=${1:-450}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu: a dry run of this script on a machine without one
PY=${PYTHON:-python3}  # there, the python3 that holds PyTorch; here, .venv/bin/python
shift || true
OUT=${OUT:-gpu/out}
mkdir -p "$OUT/stage"
export PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,memory.total,utilization.gpu --format=csv
  timeout 150 "$PY" -m pix2pix bench --device "$DEVICE" --model fashion --runs 20 --train-steps 0
  timeout 60 "$PY" -m pix2pix generate --model fashion --device "$DEVICE" demo/examples/fashion_sneaker.png \
      --output /tmp/generated.png 2>&1 | tail -2
  "$PY" -c "from PIL import Image; im = Image.open('/tmp/generated.png'); print('generated', im.size, im.getextrema())"
} > "$OUT/cuda_check.txt" 2>&1
# GPU utilisation once a second beside the stage (the share of time the card was busy).
(nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -l 1 > /tmp/utilisation.txt 2>/dev/null &)
"$PY" scripts/gpu_stage.py run 'gpu/chunks/*.safetensors' --out "$OUT/stage" --seconds "$SECONDS_STAGE" \
    --init fashion --device "$DEVICE" "$@"
pkill -f "nvidia-smi --query-gpu=utilization" || true
"$PY" - /tmp/utilisation.txt <<'PY' | tee -a "$OUT/cuda_check.txt"
import sys
v = [int(x) for x in open(sys.argv[1]).read().split() if x.strip().isdigit()]
print(f"GPU busy: mean {sum(v) / max(len(v), 1):.0f} % over {len(v)} s" if v else "no utilisation samples")
PY
