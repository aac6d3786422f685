#!/usr/bin/env bash
# README results of the issue-5 part A variants: short runs, one after another, 1 torch thread.
# Usage: nohup scripts/part_a_runs.sh > runs/part-a/log.txt 2>&1 &
set -u
OUT=${OUT:-runs/part-a}
mkdir -p "$OUT"
COMMON=(--no-progress --set train.threads=1 --set train.tensorboard=false --set train.eval_every=0 --overwrite)
VAE_EPOCHS=5   # 600 optimiser steps per epoch at batch 100: 3,000 steps
AE_EPOCHS=2
train() {  # name, then vaekit train arguments
  local name=$1; shift
  echo "== $(date +%T) train $name: $*"
  /usr/bin/time -f "$name wall %e s" vaekit train "$@" "${COMMON[@]}" --out "$OUT/$name"
}
# --- VAE family (dynamic binarized MNIST, 784-200-200-50 tanh, batch 100, cosine lr) ---
[ -f "$OUT/vae/model.safetensors" ] || train vae --preset iwae-paper-vae --epochs $VAE_EPOCHS
train warmup-lin   --preset warmup-vae --epochs $VAE_EPOCHS --set 'model.options={schedule="linear", steps=1500}'
train warmup-cyc   --preset warmup-vae --epochs $VAE_EPOCHS --set 'model.options={schedule="cyclical", steps=750, ratio=0.5, cycles=4}'
train freebits     --preset freebits-vae --epochs $VAE_EPOCHS
train capacity     --preset capacity-vae --epochs $VAE_EPOCHS --set 'model.options={gamma=100.0, c_max=25.0, steps=2400}'
train iwae-k5      --preset iwae --epochs $VAE_EPOCHS
# The VampPrior on the tanh 200-200-50 net collapses (KL -> 0) without warm-up (steps=1) and with it;
# on relu 300-300-40 (Tomczak & Welling's layer sizes; the vamp preset) it learns.
TANH=(--set 'model.hidden=[200, 200]' --set model.latent_dim=50 --set model.activation=tanh)
train vamp         --preset vamp --epochs $VAE_EPOCHS "${TANH[@]}" --set 'model.options={pseudo_inputs=500, steps=1}'
train vamp-warmup  --preset vamp --epochs $VAE_EPOCHS "${TANH[@]}" --set 'model.options={pseudo_inputs=500, schedule="linear", steps=1500}'
train vamp-relu    --preset vamp --epochs $VAE_EPOCHS --set 'model.options={pseudo_inputs=500, schedule="linear", steps=1500}'
# iwae k=50 (~150 s per epoch at 1 thread on this machine) does not fit the 20-minute budget.
# --- autoencoders (continuous MNIST, BCE) ---
train ae           --preset cae --epochs $AE_EPOCHS --model ae --set 'model.options={}'
train dae          --preset dae --epochs $AE_EPOCHS
train sparse-ae    --preset sparse-ae --epochs $AE_EPOCHS
train cae          --preset cae --epochs $AE_EPOCHS
echo "== $(date +%T) training done"
# --- evaluation: importance-sampled NLL (k=1000) on the first 2,000 test images + diagnostics ---
for name in vae warmup-lin warmup-cyc freebits capacity iwae-k5 vamp vamp-warmup vamp-relu; do
  echo "== $(date +%T) evaluate $name"
  OMP_NUM_THREADS=1 vaekit evaluate "$OUT/$name" --k 1000 --limit 2000 --no-progress > "$OUT/$name/evaluate.txt"
done
for name in ae dae sparse-ae cae; do
  OMP_NUM_THREADS=1 vaekit evaluate "$OUT/$name" --k 0 --no-progress > "$OUT/$name/evaluate.txt"
done
echo "== $(date +%T) all done"
