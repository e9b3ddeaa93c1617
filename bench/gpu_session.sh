#!/usr/bin/env bash
# The device checks of one GPU session, in order of value, each under its own time limit.
# Writes JSON and logs to $OUT (default: results/bench/gpu). Usage: bash bench/gpu_session.sh
set -u
OUT=${OUT:-results/bench/gpu}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__)" | tee -a "$OUT/gpu.txt"
PAPER="--device cuda --autocast bf16 --layers 22 --heads 16 --dim 2048 --vocab 50257 --seq-len 1024"
METHODS=gpt,nextlat:1,nextlat:2,nextlat:8,mtp:1,mtp:2,mtp:8,jtp:1,jtp:2,jtp:8
# 1. Table 4 on the paper's 1.3B model (8 x 1024 tokens per step, one method in memory at a time)
timeout 200 $PY bench/throughput.py $PAPER --batch 8 --methods $METHODS --rounds 5 --steps 2 --warmup 2 \
    --no-interleave --no-breakdown --profile nextlat:8 --json "$OUT/tp_1p3b.json" 2>&1 | tee "$OUT/tp_1p3b.log"
# 2. BST at one sequence per step (its pair head is O(T^2 V)), with GPT at the same batch
timeout 80 $PY bench/throughput.py $PAPER --batch 1 --methods gpt,bst --rounds 3 --steps 2 --warmup 1 \
    --no-interleave --no-breakdown --json "$OUT/tp_1p3b_bst.json" 2>&1 | tee "$OUT/tp_1p3b_bst.log"
# 3. the trainer's GPU paths: bf16-mixed, torch.compile, every objective
timeout 120 $PY bench/gpu_check.py --steps 200 --json "$OUT/gpu_check.json" 2>&1 | grep -v Warning | tee "$OUT/gpu_check.log"
# 4. the paper-proportioned bench shape on the GPU
timeout 40 $PY bench/throughput.py --shape paper --device cuda --autocast bf16 --rounds 5 --steps 5 \
    --no-breakdown --json "$OUT/tp_paper_shape.json" 2>&1 | tee "$OUT/tp_paper_shape.log"
