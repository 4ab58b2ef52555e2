#!/usr/bin/env bash
# The continual-injection study (issue #33), resumable across sessions. Each run that finished all its rounds is
# committed here without weights and is not run again; the others run (seed 0 of both methods first, so that a
# paired comparison exists as early as possible), continuing whatever /work/runs/continual still holds. Then every
# finished run's evidence is kept here and the report regenerated. Run it from the repository root, alone on the
# machine (2 CPU cores): 40-50 minutes a run.
set -euo pipefail
STUDY=docs/results/continual-kgfact
CONFIG=src/mixsd/configs/continual-kgfact.yaml
SWEEP=/work/runs/continual
mixsd data kgfact --size demo --out data/kgfact-demo
rounds() { python -c "import json,sys; print(len(json.load(open(sys.argv[1]))['rounds']))" "$1" 2>/dev/null || echo 0; }
for seed in 0 1; do
    for name in $(mixsd sweep --config "$CONFIG" --out "$SWEEP" --dry-run | grep -- "-seed$seed-"); do
        [ "$(rounds "$STUDY/runs/$name/rounds.json")" = 5 ] || mixsd sweep --config "$CONFIG" --out "$SWEEP" --runs "$name"
    done
done
keep() {  # a finished run's evidence, without weights
    (cd "$1" && find . -type f \( -name eval.json -o -name inject.json -o -name stages.json -o -name report.md \
        -o -name README.md -o -name train_log.jsonl -o -name rounds.json -o -name continual.json -o -name 'round-*.jsonl' \
        -o -name targets.jsonl -o -name '*.report.json' \) -not -path ./report.md -print0 | while IFS= read -r -d '' f; do install -D -m 644 "$f" "$2/$f"; done)
}
for run in "$SWEEP"/runs/*/; do
    if [ "$(rounds "$run/rounds.json")" = 5 ]; then keep "$run" "$PWD/$STUDY/runs/$(basename "$run")"; fi
done
mixsd report "$STUDY"
