#!/usr/bin/env bash
# Train the demo face generator on the lent GPU machine in one device call (issue: embedded demo model).
#
# Prepare here, once per session (the wheels and the data travel with `carry`, they are not committed):
#   echo /.whl/ >> .git/info/exclude; echo /.data/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 --platform any -d .whl jsonargparse==4.53.0
#   mkdir -p .data && cp ../shared/data/faces64/faces64.zip .data/
# Then: device run with carry [".whl", ".data"] and command `bash scripts/gpu_train_demo.sh 8.5`
# (the argument is the training time in minutes). Results come back under $OUT: the generator in two parts
# (the device returns files of at most 16 MiB; join with `cat generator.pt.part-* > generator.pt`), the
# sample grid, the training metrics and the log.
set -euo pipefail
minutes="${1:-8.5}"
source scripts/device_env.sh
python3 -c "import torch; print('device:', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')" \
  | tee "$out/log.txt"
python3 -m rls_lightning.cli.train_stylegan --data .data/faces64.zip --out /tmp/demo/generator.pt \
  --run-dir /tmp/demo/run --batch-size "${BATCH:-64}" --kimg 100000 --max-minutes "$minutes" \
  --snapshot-every "${SNAPSHOT_EVERY:-1000}" --workers-progress false "${@:2}" 2>&1 | tee -a "$out/log.txt"
split -b 15M -d /tmp/demo/generator.pt "$out/generator.pt.part-"
cp /tmp/demo/run/samples.png /tmp/demo/run/split.json "$out/"
cp /tmp/demo/run/logs/version_0/metrics.csv "$out/metrics.csv"
sha256sum /tmp/demo/generator.pt | tee -a "$out/log.txt"
