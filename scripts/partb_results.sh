#!/usr/bin/env bash
# Part B results (README "Conditional, hierarchical, full-covariance VAEs, AVAE, gradient estimators"):
# trains vae (baseline), cvae, hvae, fullcov-vae, avae on dynamically binarized MNIST, 10 epochs
# each at 1 thread, then evaluates them. Usage: nohup bash scripts/partb_results.sh > runs/partb/log.txt 2>&1 &
set -euo pipefail
OUT=${OUT:-runs/partb}
EPOCHS=${EPOCHS:-10}
mkdir -p "$OUT"
common=(--epochs "$EPOCHS" --overwrite --no-progress --set train.threads=1 --set train.tensorboard=false)
vaekit train --preset pytorch-example --binarize dynamic --out "$OUT/vae" "${common[@]}"
for preset in cvae hvae fullcov-vae avae; do
  vaekit train --preset "$preset" --out "$OUT/$preset" "${common[@]}"
done
python scripts/partb_eval.py "$OUT"
vaekit gradvar "$OUT/vae" --batch-size 100 --draws 200
vaekit sample "$OUT/cvae" --label 7 -n 64 -o "$OUT/cvae-label7.png"
