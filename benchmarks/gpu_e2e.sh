#!/usr/bin/env bash
# The GPU machine's one prepared run (issue #34), every step timed, each step's log and figures in RESULTS:
#   1. env.json      the card, torch, transformers, TRL and the date;
#   2. inject        `mixsd inject` end to end (static decoding, bf16 training, evaluation through LoopLM with the
#                    locality suite and the general probe); inject-stages.json holds each stage's seconds;
#   3. train         training tokens/s and MFU through TRL, all weights and LoRA (train_throughput.py);
#   4. decode        every decoding path against the bandwidth bound, and LoopLM against lm-eval's HFLM on the
#                    same requests (gpu_decode.py --tokenizer).
# A failing step does not stop the next (a short lease must not lose every figure for one); steps.tsv says which
# failed. On a CPU the same steps run with tiny shapes (a 2-layer model, a few items a pool): a check that the
# script works, in about five minutes on 2 cores, not a measurement.
#
#   bash benchmarks/gpu_e2e.sh [RESULTS]          # RESULTS: default $OUT where set (the device machine), else a temp dir
#
# On the lent machine, prepare .gpu here first (benchmarks/gpu_carry.sh) and carry it: the script installs it.
# MODEL picks inject's model (default: the embedded smollm2-135m on a GPU, a tiny random one on a CPU), TOKENIZER
# the lm-eval pair's tokenizer directory (default: the embedded model's), PYTHON the interpreter that has mixsd
# (default python3), STEPS which steps run (default all: "env facts inject train decode"; a lease of under 10
# minutes a call wants two calls, e.g. STEPS="env facts inject" then STEPS="env train decode"), DECODE_PATHS the
# decoding paths (on a GPU: the static ones and the lm-eval pair; the others were measured in session 8). Commit a GPU run's RESULTS as docs/results/gpu-<card>/.
set -uo pipefail
cd "$(dirname "$0")/.."
RESULTS=${1:-${OUT:-$(mktemp -d -t mixsd-gpu-e2e-XXXX)}}
PY=${PYTHON:-python3}
GPU=$($PY -c 'import torch; print(int(torch.cuda.is_available()))') || { echo "no torch under $PY"; exit 2; }
if [ -d .gpu ] && [ "$GPU" = 1 ]; then  # carried to the device machine (benchmarks/gpu_carry.sh): wheels, data, shape
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/mixsd-site \
        .gpu/whl/*.whl || exit 2
    export PYTHONPATH=/tmp/mixsd-site:$PWD/.gpu/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH} MIXSD_CACHE=/tmp/mixsd-cache
    [ -d "$MIXSD_CACHE" ] || cp -r .gpu/cache "$MIXSD_CACHE"  # the weights go there, never into what travels
    # random weights of the embedded model's shape (its GGUF does not fit a call): times hold, answers are noise
    $PY - "$MIXSD_CACHE/models/smollm2-135m" <<'EOF' || exit 2
import sys
from pathlib import Path
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from mixsd.models import save_into
path = Path(sys.argv[1])
if not (path / "model.safetensors").is_file():
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path), dtype=torch.float32)
    save_into(model, AutoTokenizer.from_pretrained(path), path)
EOF
fi
WORK=$(mktemp -d -t mixsd-gpu-e2e-work-XXXX)
mkdir -p "$RESULTS"
export PYTHONUNBUFFERED=1
STEPS=${STEPS:-env facts inject train decode}
printf 'step\texit\tseconds\n' >"$RESULTS/steps.tsv"

step() {  # step NAME COMMAND...: run it, its output into RESULTS/NAME.log, its exit status and seconds into steps.tsv
    local name=$1 began rc
    shift
    [[ " $STEPS " == *" $name "* ]] || return 0
    echo "== $name: $*"
    began=$EPOCHREALTIME
    "$@" >"$RESULTS/$name.log" 2>&1
    rc=$?
    awk -v n="$name" -v rc=$rc -v a="$began" -v b="$EPOCHREALTIME" 'BEGIN { printf "%s\t%s\t%.1f\n", n, rc, b - a }' |
        tee -a "$RESULTS/steps.tsv"
    tail -n 25 "$RESULTS/$name.log"
}

step env $PY - "$RESULTS/env.json" <<'EOF'
import datetime, json, platform, sys
import torch, transformers, trl
card = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or platform.machine()
info = dict(card=card, torch=torch.__version__, cuda=torch.version.cuda, transformers=transformers.__version__,
            trl=trl.__version__, python=platform.python_version(), date=datetime.date.today().isoformat())
json.dump(info, open(sys.argv[1], "w"), indent=1)
print(info)
EOF

if [ "$GPU" = 1 ]; then
    if [ -z "${MODEL:-}" ]; then  # carried, a path: the alias's shipped known set is keyed by its GGUF
        if [ -d .gpu ]; then MODEL=$MIXSD_CACHE/models/smollm2-135m; else MODEL=smollm2-135m; fi
    fi
    INJECT_CONFIG='{}'  # the defaults: static decoding on CUDA, bf16, the full locality set, 200 everyday prompts
    SHAPE=()
    DECODE_PATHS=${DECODE_PATHS:-engine-static,greedy-static,lmeval-hflm,lmeval-loop}  # the rest: session 8
else
    MODEL=${MODEL:-$WORK/tiny-model}
    [ -e "$MODEL" ] || $PY benchmarks/scale.py --tiny-model --out "$MODEL" >/dev/null
    INJECT_CONFIG='{"targets": {"max_new_tokens": 16}, "train": {"epochs": 1},
      "eval": {"limit": 4, "locality_limit": 4, "general_prompts": 4, "drift_items": 0, "fisher_items": 0,
               "max_new_tokens": 16}}'
    SHAPE=(--shape tiny)
    DECODE_PATHS=${DECODE_PATHS:-engine-eager,engine-static,greedy-static,lmeval-hflm,lmeval-loop}
fi
echo "$INJECT_CONFIG" >"$WORK/inject.yaml"  # JSON is YAML
step facts $PY -m mixsd data kgfact --size demo --out "$WORK/facts"
step inject $PY -m mixsd inject --facts "$WORK/facts" --model "$MODEL" --out "$WORK/inject" --config "$WORK/inject.yaml"
cp "$WORK/inject/stages.json" "$RESULTS/inject-stages.json" 2>/dev/null
cp "$WORK/inject/report.md" "$RESULTS/inject-report.md" 2>/dev/null

step train $PY benchmarks/train_throughput.py "${SHAPE[@]}" --json "$RESULTS/train_throughput.json"

TOKENIZER=${TOKENIZER:-$($PY -c 'from mixsd import models; print(models.resolve(models.DEFAULT_MODEL))')}
step decode $PY benchmarks/gpu_decode.py "${SHAPE[@]}" --tokenizer "$TOKENIZER" --paths "$DECODE_PATHS" --json "$RESULTS/gpu_decode.json"

rm -rf "$WORK"
echo "results in $RESULTS:"
cat "$RESULTS/steps.tsv"
awk -F'\t' 'NR > 1 && $2 != 0 { failed = 1 } END { exit failed }' "$RESULTS/steps.tsv"  # 0 only if every step passed
