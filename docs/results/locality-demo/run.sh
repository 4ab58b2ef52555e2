#!/bin/bash
# The locality study (docs/results/locality-demo/README.md): the demo's MixSD model and an SFT model trained with
# the demo's settings, each scored on the embedded model's known items. Run from the repository root, alone on the
# machine; RUNS holds the weights (not committed), the study directory what is committed.
set -euo pipefail
RUNS=${RUNS:-runs/locality-demo}
OUT=docs/results/locality-demo
M=.venv/bin/mixsd
QUICK=(--general-prompts 0 --drift-items 0 --fisher-items 0)

[ -f "$RUNS/kgfact-demo/manifest.json" ] || $M data kgfact --size demo --seed 0 --out "$RUNS/kgfact-demo"
for method in mixsd sft; do   # the demo's settings then (run.yaml): full fine-tuning, 7 epochs, lr 3e-4, batch 4
  $M inject --facts "$RUNS/kgfact-demo" --out "$RUNS/demo-$method" --method $method --config docs/results/locality-demo/run.yaml
done
# The base against itself: every known item kept, and the cost of the tuned pass (shipped known set).
$M eval --model smollm2-135m --base smollm2-135m --suite locality "${QUICK[@]}" --out "$OUT/base.json"
$M eval --model "$RUNS/demo-mixsd/model" --facts "$RUNS/kgfact-demo/train.jsonl" --targets "$RUNS/demo-mixsd/targets.jsonl" \
  --suite locality "${QUICK[@]}" --out "$OUT/mixsd.json"
$M eval --model "$RUNS/demo-sft/model" --facts "$RUNS/kgfact-demo/train.jsonl" \
  --suite locality "${QUICK[@]}" --out "$OUT/sft.json"
cp "$RUNS/demo-mixsd/targets.jsonl.report.json" "$OUT/mixsd-targets.report.json"
(cd "$OUT" && ../../../$M compare mixsd.json sft.json > compare.txt)
