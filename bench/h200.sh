#!/usr/bin/env bash
# The GPU benchmark session, run on the lent H200 machine from the repo root after
#   source .gpu/setup.sh
# Writes its results under $OUT (at most 8 files come back).
#   bash bench/h200.sh [steps...]   steps: info launch dispatch tune gemm conv nets tests
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export OCLCORE_CACHE_DIR=${OCLCORE_CACHE_DIR:-/tmp/oclcore-cache}
steps=${*:-info launch dispatch gemm conv}
log="$OUT/log.txt"
run() { echo "=== $* ===" | tee -a "$log"; "$@" 2>&1 | tee -a "$log"; }
for s in $steps; do
  case $s in
    info) run python3 -P -m oclcore info; run nvidia-smi --query-gpu=name,driver_version --format=csv ;;
    launch) run python3 bench/launch.py ;;
    dispatch) run python3 bench/dispatch.py --wall ;;
    tune) run python3 -P -m oclcore tune gemm --budget "${TUNE_BUDGET:-180}"
          cp "$OCLCORE_CACHE_DIR"/gemm_*.json "$OUT"/ 2>/dev/null ;;
    gemm) run python3 bench/gemm.py --out "$OUT" ;;
    conv) run python3 bench/conv.py --models resnet50 --out "$OUT" ;;
    nets) run python3 bench/nets.py --out "$OUT" ${NETS_ARGS:-} ;;
    tests) run python3 -P -m pytest -q -p no:cacheprovider ${TEST_FILES:-tests} ;;
  esac
done
rm -f "$OUT"/*.json.tmp
