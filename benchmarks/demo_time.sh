#!/usr/bin/env bash
# Times `make demo` as a new user meets it: a fresh clone of this repository and a fresh
# model cache, `make setup` and `make demo` timed separately. The 20-minute goal of the
# demo includes the set-up.   Usage: bash benchmarks/demo_time.sh [WORKDIR]
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
make demo 2>&1 | tee "$work/demo.log"
t2=$(date +%s)
echo "set-up $((t1 - t0)) s, demo $((t2 - t1)) s, total $((t2 - t0)) s (logs and runs/demo in $work)"
cat runs/demo/stages.json
