#!/usr/bin/env bash
# One-shot GPU check of the causal-LM backbone (issue 4), for a single-GPU machine where `make install`
# was run. Trains base rewards on the Attributes world for a few minutes per run:
#   SmolLM2-135M (offline GGUF) with LoRA, then with full fine-tuning,
#   then a Qwen-class model with LoRA if QWEN_PATH names a local copy (e.g. of Qwen/Qwen2.5-0.5B).
# Each run adds throughput (examples/s), peak GPU memory, validation accuracy and wall time per stage
# to $OUT/backbone_gpu.json (benchmarks/results/ when OUT is unset). Checkpoints stay in $RUNS.
# Knobs: MINUTES (per run, default 2.5), QWEN_PATH, RUNS, VENV_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_BIN=${VENV_BIN:-.venv/bin}
RESULTS=${OUT:-benchmarks/results}
RUNS=${RUNS:-/tmp/preflm-backbone-runs}
MINUTES=${MINUTES:-2.5}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$RESULTS" "$RUNS"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

DATA="$RUNS/attributes_world.jsonl"
if [ ! -f "$DATA" ]; then
  "$VENV_BIN/python" -c "import sys; from preflm.simulate import write_world; write_world(sys.argv[1])" "$DATA"
fi

launch() {
  local name=$1; shift
  "$VENV_BIN/accelerate" launch --num_processes 1 --num_machines 1 --mixed_precision bf16 --dynamo_backend no \
    benchmarks/train_backbone.py --data "$DATA" --minutes "$MINUTES" --out "$RESULTS/backbone_gpu.json" \
    --output-dir "$RUNS/$name" "$@" > "$RESULTS/log_$name.txt" 2>&1 || echo "run $name failed: see $RESULTS/log_$name.txt"
  tail -n 25 "$RESULTS/log_$name.txt"
}

launch smollm2-lora --model smollm2 --mode lora
launch smollm2-full --model smollm2 --mode full --learning-rate 2e-5
if [ -n "${QWEN_PATH:-}" ]; then
  launch qwen-lora --model "$QWEN_PATH" --mode lora
fi
cat "$RESULTS/backbone_gpu.json"
