#!/usr/bin/env bash
# The whole benchmark set on the lent GPU machine, in one device call of at most 8 minutes:
#   device run, carry [".whl"], timeout_s 540, command `bash benchmarks/gpu.sh`
# Prepare the wheels here first (the device machine has torch and lightning but not nflows / jsonargparse):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 --platform any -d .whl nflows==0.14 jsonargparse==4.53.0
# Every benchmark prints one JSON line (machine, date, commit); they are collected in $OUT/benchmarks.jsonl.
# Each step has its own time limit (460 s together), so one that runs long costs its own figure, not the rest.
# A smoke test on a CPU: PYTHON=.venv/bin/python RES=32 SMALL=16 BATCHES="1 2" IMAGES=2 bash benchmarks/gpu.sh
set -uo pipefail
source scripts/device_env.sh
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$out/gpu.txt" || true

run() {  # run SECONDS SCRIPT ARGS...: append the script's JSON line, keep its log
  local limit="$1"; shift
  echo "== $* (limit ${limit}s)" | tee -a "$out/log.txt"
  timeout "$limit" "${PYTHON:-python3}" "$@" 2>>"$out/log.txt" | tee -a "$out/benchmarks.jsonl" \
    || echo "{\"failed\": \"$*\", \"exit\": $?}" | tee -a "$out/benchmarks.jsonl"
}

res="${RES:-1024}"; small="${SMALL:-256}"; images="${IMAGES:-4}"
read -r -a batches <<< "${BATCHES:-1 4 8 16}"
run 60 benchmarks/generator_speed.py --resolutions "$small" "$res" --batch-sizes "${batches[@]}" --precision 32
run 60 benchmarks/generator_speed.py --resolutions "$small" "$res" --batch-sizes "${batches[@]}" --precision bf16
run 40 benchmarks/generator_speed.py --resolutions "$res" --batch-sizes 1 8 --precision bf16 --channels-last
run 80 benchmarks/inversion.py --resolution "$res" --batch-sizes "${batches[@]}" --precision 32-true
run 80 benchmarks/inversion.py --resolution "$res" --batch-sizes "${batches[@]}" --precision bf16-mixed
run 25 benchmarks/flow_throughput.py --batch-size 4096 --precision 32
run 25 benchmarks/flow_throughput.py --batch-size 4096 --precision bf16
run 60 benchmarks/bf16_inversion.py --resolution "$res" --images "$images"
if [ -f checkpoints/demo64/generator.pt ] && [ -f checkpoints/demo64/flow.pt ]; then
  run 30 benchmarks/bf16_inversion.py --generator checkpoints/demo64/generator.pt \
    --flow checkpoints/demo64/flow.pt --images 16
fi
echo "done" | tee -a "$out/log.txt"
