#!/usr/bin/env bash
# The study (`snakemake study --config scale=study`) on one GPU machine: every run on the GPU,
# 16 jobs side by side. Carries its Snakemake as wheels in .whl/ where the machine has none
# (set WHEELS= to skip). Writes the study's tables, the runs' records and curves (no weights)
# and the per-job times to $OUT (default results/bench/study). Usage: bash bench/study_gpu.sh [LIMIT_S]
set -u
OUT=${OUT:-results/bench/study}; mkdir -p "$OUT"
LIMIT=${1:-480}; JOBS=${JOBS:-16}
WHEELS=${WHEELS-.whl}
if [ -n "$WHEELS" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$WHEELS"/*.whl || exit 3
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 CUBLAS_WORKSPACE_CONFIG=:4096:8   # deterministic cuBLAS
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/machine.txt"; nproc | tee -a "$OUT/machine.txt"
printf 'runtime: {accelerator: gpu, num_threads: 1, progress: false}\n' > /tmp/study_gpu.yaml
start=$(date +%s)
timeout "$LIMIT" python3 -m snakemake study --cores "$JOBS" --resources gpu="$JOBS" --keep-going ${PRIORITY:+--prioritize $PRIORITY} \
  --configfile /tmp/study_gpu.yaml --config scale=study > "$OUT/snakemake.log" 2>&1
echo "snakemake exit $? after $(( $(date +%s) - start )) s" | tee -a "$OUT/machine.txt"
tail -15 "$OUT/snakemake.log"
python3 bench/wall_time.py results/study --top 8 > "$OUT/wall_time.txt" 2>&1; tail -12 "$OUT/wall_time.txt"
tar czf "$OUT/study.tgz" --exclude='*.ckpt' --exclude='*.pt' --exclude='data' results/study .snakemake/log 2>/dev/null
ls -la "$OUT"
