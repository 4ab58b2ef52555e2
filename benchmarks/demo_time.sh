#!/usr/bin/env bash
# Times `make demo` as a new user meets it: a fresh clone of this repository and a fresh model cache; the
# set-up, the model conversion and each stage reported separately, with the CPU and whether training used bf16.
# The goal (15 minutes) includes the set-up.
#   Usage: bash benchmarks/demo_time.sh [WORKDIR]          FP32=1 bash ...  times the fp32 path on a bf16 CPU
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
rm -rf "$work/clone" "$work/cache"
git clone -q "$repo" "$work/clone"
cd "$work/clone"
export MIXSD_CACHE="$work/cache"
t0=$(date +%s)
make setup > "$work/setup.log" 2>&1
t1=$(date +%s)
.venv/bin/python -c "from mixsd import models; models.resolve(models.DEFAULT_MODEL)" > "$work/convert.log" 2>&1
t2=$(date +%s)
.venv/bin/mixsd demo ${FP32:+--no-bf16} 2>&1 | tee "$work/demo.log"  # what `make demo` runs after the set-up
t3=$(date +%s)
echo
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores;" \
  "bf16 native: $(grep -qw avx512_bf16 /proc/cpuinfo && echo yes || echo no);" \
  "training $(grep -m1 precision runs/demo/model/README.md | tr -d '|' | xargs)"
echo "set-up $((t1 - t0)) s, model conversion $((t2 - t1)) s, demo $((t3 - t2)) s, total $((t3 - t0)) s"
.venv/bin/python - <<'PY'
import json
for name, stage in json.load(open("runs/demo/stages.json")).items():
    print(f"  {name}: {stage['seconds']:.0f} s")
PY
echo "(logs and runs/demo in $work)"
