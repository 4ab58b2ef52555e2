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
for sweep in /work/runs/frontier /work/runs/frontier-memit /work/runs/frontier-sft; do
    mkdir -p "$sweep/runs" "$sweep/targets"
done
where() {  # the sweep directory a run of the search was keyed in (MEMIT and SFT's 14 epochs ran beside the others)
    case "$1" in memit) echo /work/runs/frontier-memit ;; sft-epochs14*) echo /work/runs/frontier-sft ;;
        *) echo /work/runs/frontier ;; esac
}
for run in "$STUDY"/runs/*/; do
    cp -rn "$run" "$(where "$(basename "$run")")/runs/"
done
cp -n "$STUDY"/targets/* /work/runs/frontier/targets/
mixsd sweep --config "$CONFIG" --out /work/runs/frontier-memit --runs memit || true
mixsd sweep --config "$CONFIG" --out /work/runs/frontier-sft --runs 'sft-epochs14*' || true
for runs in 'mixsd*' sft 'sft-[lr]*'; do   # the rest
    mixsd sweep --config "$CONFIG" --out /work/runs/frontier --runs "$runs" || true
done
# the fallback knob: MixSD's best-kept point with gold fallbacks (runs/onfail-gold/, its own sweep directory)
mkdir -p /work/runs/frontier-gold/runs
[ -d "$STUDY/onfail-gold/runs" ] && cp -rn "$STUDY"/onfail-gold/runs/* /work/runs/frontier-gold/runs/
mixsd sweep --config src/mixsd/configs/frontier-kgfact-gold.yaml --out /work/runs/frontier-gold || true
# the confirmation: two more seeds of MixSD's 0.9 point and of SFT at its settings (confirm/runs/; seed 0 is runs/)
for side in mixsd sft; do
    mkdir -p "/work/runs/confirm-$side/runs"
    cp -rn "$STUDY"/confirm/runs/"$side"-* "/work/runs/confirm-$side/runs/" 2>/dev/null || true
    [ "$side" = mixsd ] && mkdir -p /work/runs/confirm-mixsd/targets && \
        { cp -n "$STUDY"/confirm/targets/* /work/runs/confirm-mixsd/targets/ 2>/dev/null || true; }
    mixsd sweep --config src/mixsd/configs/frontier-kgfact-confirm.yaml --out "/work/runs/confirm-$side" \
        --runs "$side-*" || true
done
# SFT's confirmation seeds at matched memorisation: the first epoch that memorised >= 0.9 of the train questions
# (the first-peak rule stops at a one-question dip: it read seed 1 at epoch 2, 0.22), scored as the runs were;
# a seed whose first peak is that epoch (seed 2) is its own matched reading
for run in /work/runs/confirm-sft/runs/*/; do
    [ -f "$run/eval.json" ] || continue
    epoch=$(python -c 'import json, sys; t = json.load(open(sys.argv[1])); points = t["points"]
first = next(int(p["epoch"]) for p in points if p["memorisation"]["train"] >= 0.9)
print("" if first == int(points[t["selected"]]["epoch"]) else first)' "$run/model/trajectory.json")
    name=$(basename "$run")-epoch$epoch
    [ -z "$epoch" ] || [ -f "$STUDY/confirm/matched/$name/eval.json" ] && continue
    mixsd eval --model "$run/model/epochs/epoch-$(printf %03d "$epoch")" --base smollm2-135m --facts data/kgfact-demo \
        --suite locality --limit 50 --drift-items 0 --fisher-items 0 --targets data/kgfact-demo/train.jsonl \
        --out "/work/runs/confirm-matched/$name/eval.json"
    install -D -m 644 "/work/runs/confirm-matched/$name/eval.json" "$STUDY/confirm/matched/$name/eval.json"
done
keep() {  # a finished run's evidence, without weights
    (cd "$1" && find . -type f \( -name eval.json -o -name inject.json -o -name stages.json -o -name report.md \
        -o -name README.md -o -name train_log.jsonl -o -name trajectory.json -o -name memorisation.json \) \
        -not -path './model/epochs/*' -not -path './model/evals/*/eval.json' -print0 | while IFS= read -r -d '' f; do install -D -m 644 "$f" "$2/$f"; done)
}
for run in /work/runs/frontier/runs/*/ /work/runs/frontier-memit/runs/*/ /work/runs/frontier-sft/runs/*/; do
    [ -f "$run/eval.json" ] && keep "$run" "$PWD/$STUDY/runs/$(basename "$run")"
done
for run in /work/runs/frontier-gold/runs/*/; do
    [ -f "$run/eval.json" ] && keep "$run" "$PWD/$STUDY/onfail-gold/runs/$(basename "$run")"
done
for run in /work/runs/confirm-*/runs/*/; do
    [ -f "$run/eval.json" ] && keep "$run" "$PWD/$STUDY/confirm/runs/$(basename "$run")"
done
install -m 644 /work/runs/frontier/targets/* "$STUDY/targets/"
if compgen -G "/work/runs/confirm-mixsd/targets/*" > /dev/null; then
    install -D -m 644 -t "$STUDY/confirm/targets" /work/runs/confirm-mixsd/targets/*
fi
mixsd report "$STUDY"
