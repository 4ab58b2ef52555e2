#!/usr/bin/env bash
# The recipe search (issue #30), resumable across sessions. The runs that finished are committed here without their
# weights; this script puts them back where the sweep keyed them (a run's stage keys hold its paths, so the sweep
# directories must be the same: /work/runs/frontier, and /work/runs/frontier-memit for MEMIT, which ran beside the
# others while they trained), continues the grid, keeps what finished and regenerates the report. Run it from the
# repository root, alone on the machine (2 CPU cores): 30-60 minutes a run; stop it any time.
set -euo pipefail
STUDY=docs/results/frontier-kgfact
CONFIG=src/mixsd/configs/frontier-kgfact.yaml
mixsd data kgfact --size demo --out data/kgfact-demo
for sweep in /work/runs/frontier /work/runs/frontier-memit; do
    mkdir -p "$sweep/runs" "$sweep/targets"
done
for run in "$STUDY"/runs/*/; do
    name=$(basename "$run")
    dest=/work/runs/frontier; [ "$name" = memit ] && dest=/work/runs/frontier-memit
    cp -rn "$run" "$dest/runs/"
done
cp -n "$STUDY"/targets/* /work/runs/frontier/targets/
mixsd sweep --config "$CONFIG" --out /work/runs/frontier-memit --runs memit || true
mixsd sweep --config "$CONFIG" --out /work/runs/frontier --runs '[ms][if]*' || true   # mixsd-* and sft-*
# the fallback knob: MixSD's best-kept point with gold fallbacks (runs/onfail-gold/, its own sweep directory)
mkdir -p /work/runs/frontier-gold/runs
[ -d "$STUDY/onfail-gold/runs" ] && cp -rn "$STUDY"/onfail-gold/runs/* /work/runs/frontier-gold/runs/
mixsd sweep --config src/mixsd/configs/frontier-kgfact-gold.yaml --out /work/runs/frontier-gold || true
keep() {  # a finished run's evidence, without weights
    (cd "$1" && find . -type f \( -name eval.json -o -name inject.json -o -name stages.json -o -name report.md \
        -o -name README.md -o -name train_log.jsonl -o -name trajectory.json -o -name memorisation.json \) \
        -not -path './model/epochs/*' -not -path './model/evals/*/eval.json' -print0 | while IFS= read -r -d '' f; do install -D -m 644 "$f" "$2/$f"; done)
}
for run in /work/runs/frontier/runs/*/ /work/runs/frontier-memit/runs/*/; do
    [ -f "$run/eval.json" ] && keep "$run" "$PWD/$STUDY/runs/$(basename "$run")"
done
for run in /work/runs/frontier-gold/runs/*/; do
    [ -f "$run/eval.json" ] && keep "$run" "$PWD/$STUDY/onfail-gold/runs/$(basename "$run")"
done
install -m 644 /work/runs/frontier/targets/* "$STUDY/targets/"
mixsd report "$STUDY"
