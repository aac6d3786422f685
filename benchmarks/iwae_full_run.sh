#!/usr/bin/env bash
# The converged reproduction of Burda et al.'s VAE (issue 17): 3,280 epochs at batch 20, ~6 s per
# epoch at one thread, so it spans sessions and machines. The run lives outside the repository
# (RUN, default /work/runs/iwae-paper-vae-full); its resumable state is committed between sessions
# in benchmarks/runs/iwae-paper-vae-full/ (config, metrics, data.json, checkpoints/last.safetensors).
#
#   benchmarks/iwae_full_run.sh start    # restore RUN from the repository if needed, resume in the background
#   benchmarks/iwae_full_run.sh save     # stop it at a checkpoint (SIGTERM) and copy its state into the repository
#   benchmarks/iwae_full_run.sh finish   # once all epochs are trained: evaluate as the paper does (k = 5000,
#                                        # all 10,000 test images, ~30-120 min at one thread) and keep the
#                                        # evidence (benchmarks/iwae_finish.py: results JSON, pretrained:, docs)
#
# Another run kept the same way (e.g. a faster recipe's candidate): RUN=/work/runs/NAME
# KEEP=benchmarks/runs/NAME CORE=0 NICE=19 benchmarks/iwae_full_run.sh start|save (it resumes from its
# own config.json; only the full protocol starts from a preset).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-/work/runs/iwae-paper-vae-full}
KEEP=${KEEP:-benchmarks/runs/iwae-paper-vae-full}
LOG=${LOG:-$(dirname "$RUN")/iwae-full.log}
case "${1:-}" in
  start)
    if [ ! -f "$RUN/checkpoints/last.safetensors" ] && [ -f "$KEEP/checkpoints/last.safetensors" ]; then
      mkdir -p "$RUN" && cp -r "$KEEP"/. "$RUN"/
    fi
    if [ -f "$RUN/checkpoints/last.safetensors" ]; then
      args=(--out "$RUN" --resume)
    else
      args=(--preset iwae-paper-vae-full --out "$RUN")
    fi
    OMP_NUM_THREADS=1 nohup nice -n "${NICE:-0}" taskset -c "${CORE:-1}" vaekit train "${args[@]}" --threads 1 --no-progress \
      --set train.tensorboard=false >> "$LOG" 2>&1 &
    echo "training in the background (pid $!), log $LOG"
    ;;
  save)
    pid=$(pgrep -f "vaekit train.*--out $RUN" || true)
    if [ -n "$pid" ]; then kill -TERM $pid; while kill -0 $pid 2>/dev/null; do sleep 1; done; fi
    mkdir -p "$KEEP/checkpoints"
    cp "$RUN"/config.json "$RUN"/metrics.jsonl "$KEEP"/
    [ -f "$RUN/data.json" ] && cp "$RUN/data.json" "$KEEP"/
    cp "$RUN/checkpoints/last.safetensors" "$KEEP/checkpoints/"
    [ -f "$RUN/model.safetensors" ] && cp "$RUN/model.safetensors" "$KEEP"/  # training is over: finish needs it
    tail -1 "$KEEP/metrics.jsonl"
    ;;
  finish)
    if pgrep -f "vaekit train.*--out $RUN" >/dev/null; then echo "$RUN is still training" >&2; exit 2; fi
    python benchmarks/iwae_finish.py "$RUN" --check-trained  # refuse before an hour of evaluation
    if ! python benchmarks/iwae_finish.py "$RUN" --check-evaluated 2>/dev/null; then  # none, or of other weights
      OMP_NUM_THREADS=1 /usr/bin/time -f '{"user": %U, "sys": %S, "wall": %e}' -o "$RUN/eval.time" \
        taskset -c "${CORE:-1}" vaekit evaluate "$RUN" --k 5000 --threads 1
    fi
    python benchmarks/iwae_finish.py "$RUN" --eval-time "$RUN/eval.time"
    ;;
  *) echo "usage: $0 start|save|finish" >&2; exit 2 ;;
esac
