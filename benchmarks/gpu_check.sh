#!/usr/bin/env bash
# The GPU check (issue 18), one command from the repository root:
#
#   bash tools/prepare_gpu_run.sh            # on the CPU machine, once: wheels + corpus into .gpu/
#   bash benchmarks/gpu_check.sh             # on the GPU machine (carry .gpu); figures in $OUT/gpu_check.txt
#   bash benchmarks/gpu_check.sh --smoke     # anywhere: the same steps, CI-sized, on whatever device there is
#
# Steps: `pytest -m gpu`; the throughput benchmark at the textbook size and at the shipped Tang
# model's size (useful chars/s, ms/step, peak GPU memory) with the textbook recipe beside it; the
# Tang preset trained for the same fixed minutes on the GPU and on the CPU, validation loss of
# each. About 8 minutes on one GPU; the smoke run takes under a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=0
[[ "${1:-}" == "--smoke" ]] && smoke=1
out="${OUT:-gpu-check}"
mkdir -p "$out"
report="$out/gpu_check.txt"
py="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 POETGEN_CACHE="${POETGEN_CACHE:-$out/cache}"
# The GPU machine cannot download: its python lacks OpenCC, pypinyin and prompt_toolkit, which
# tools/prepare_gpu_run.sh carried as wheels; poetgen itself runs from this source tree.
if ! "$py" -c "import opencc, pypinyin, prompt_toolkit" 2>/dev/null; then
  "$py" -m pip install -q --no-index --find-links .gpu/wheels --target .gpu/site opencc pypinyin prompt_toolkit
  export PYTHONPATH="$PWD/.gpu/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
if [[ -z "${POETGEN_DATA:-}" ]]; then
  export POETGEN_DATA="$PWD/.gpu/data"
  [[ -d "$POETGEN_DATA" ]] || export POETGEN_DATA="$PWD/../shared/corpora"
fi
device=cpu
"$py" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" && device=cuda
if (( smoke )); then
  bench=(--rounds 1 --steps 2 --warmup 1 --names-steps 20) minutes=0.1
else
  bench=(--rounds 5 --steps 10 --warmup 3 --names-steps 300) minutes=2
fi
seconds=$("$py" -c "print(int(float('$minutes') * 60))")

{
  echo "== machine ($(date -u +%FT%TZ))"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'device:',
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none', '| cpu threads', torch.get_num_threads())"
  echo "== pytest -m gpu"
  "$py" -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py 2>&1 | tail -n 3 || true
  echo "== throughput on $device, textbook size (embed 128, LSTM 2x256)"
  "$py" benchmarks/throughput.py --device "$device" --data-dir "$POETGEN_DATA" "${bench[@]}" --skip d
  echo "== throughput on $device, the shipped Tang model's size (embed 192, LSTM 2x384)"
  "$py" benchmarks/throughput.py --device "$device" --data-dir "$POETGEN_DATA" "${bench[@]}" --skip cd \
      --embed 192 --hidden 384
  for dev in $(printf '%s\n' "$device" cpu | sort -u); do
    echo "== Tang preset, ${seconds} s of training on $dev"
    rm -rf "$out/tang-$dev"
    "$py" -m poetgen train --corpus tang --device "$dev" --max-time "$seconds" --eval-every 100000 --quiet \
        --out "$out/tang-$dev" > "$out/tang-$dev.log" 2>&1 || { tail -n 5 "$out/tang-$dev.log"; continue; }
    "$py" -c "import json; r = [json.loads(l) for l in open('$out/tang-$dev/metrics.jsonl')][-1];
print(f\"$dev: {r['step']} steps in {r['wall_s']:.0f} s, val loss {r['val_loss']:.3f} nats/char, \"
      f\"{r['useful_chars_per_s']:,.0f} useful chars/s\")"
  done
} 2>&1 | tee "$report"
