#!/usr/bin/env bash
# Second device call of the demo-model issue, right after scripts/gpu_train_demo.sh (the machine still warm: its
# generator is taken from /tmp/demo), or later with checkpoints/demo64/generator.pt joined from the parts:
#   device run, carry [".whl", ".data"], timeout_s 600, command `bash scripts/gpu_finish_demo.sh`
# (.whl: nflows and jsonargparse wheels, see benchmarks/gpu.sh; .data: faces64.zip, see gpu_train_demo.sh).
# It trains the flow prior with train_flow.py's defaults (which write checkpoints/demo64/flow.pt), then runs
# the model card's held-out evaluation (RLS+ on the 1,000 held-out faces at 4x and 8x). Back under $OUT: flow.pt in parts,
# its Gaussianization report, heldout.json, two overview pictures, the log. FLOW_ARGS, LIMIT and BATCH override
# (a CPU smoke test: PATH=.venv/bin:$PATH FLOW_ARGS="--num-samples 20000 --hidden 64" LIMIT=4 BATCH=4 bash ...).
set -euo pipefail
source scripts/device_env.sh
if [ ! -f checkpoints/demo64/generator.pt ] && [ -f /tmp/demo/generator.pt ]; then
  # still warm from gpu_train_demo.sh: its generator is on this machine, no need to send it back first
  mkdir -p checkpoints/demo64 && cp /tmp/demo/generator.pt checkpoints/demo64/generator.pt
fi
test -f checkpoints/demo64/generator.pt || { echo "checkpoints/demo64/generator.pt is missing"; exit 2; }
timeout 200 python3 train_flow.py ${FLOW_ARGS:-} 2>&1 | grep -v "━" | tee "$out/log.txt"
# files come back at most 16 MiB each: the flow (about 28 MiB) in parts, joined with cat flow.pt.part-* > flow.pt
split -b 15M -d checkpoints/demo64/flow.pt "$out/flow.pt.part-"
cp checkpoints/demo64/flow-report.* "$out/" 2>/dev/null || true
timeout 360 python3 scripts/evaluate_demo_model.py --data .data/faces64.zip --batch-size "${BATCH:-128}" \
  --limit "${LIMIT:-1000}" --work-dir /tmp/heldout 2>&1 | grep -v "━" | tee -a "$out/log.txt"
cp /tmp/heldout/heldout.json "$out/"
for f in 4 8; do cp "/tmp/heldout/rls+_${f}x/overview.png" "$out/heldout_overview_${f}x.png"; done
