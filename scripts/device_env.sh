# Sourced by the device-machine scripts: $out (= $OUT, what comes back), the carried wheels installed into
# /tmp/site (the device machine has torch and lightning, not nflows or jsonargparse), PYTHONPATH, unbuffered logs.
out="${OUT:-/tmp/out}"
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1
