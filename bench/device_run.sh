#!/usr/bin/env bash
# The GPU checks of issues 9 and 11 in one run, for a lent GPU machine that has PyTorch but no Django,
# no database and no network (bench/README.md, "On a GPU"). Every step has its own time limit, so a
# slow or failing step leaves the others' results. Results go to $OUT (default bench/results/device).
#
#   bash bench/device_run.sh            # with the carried folder .gpu/ (datasets, embedding cache,
#                                       # the text model's config.json: see bench/README.md)
set -u
OUT=${OUT:-bench/results/device}
GPU=${GPU:-.gpu}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
step() {  # step NAME SECONDS CMD...: run with a limit, log to $OUT/steps.log, note the wall time and exit code
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name (limit ${limit}s): $*" | tee -a "$OUT/steps.log"
  timeout "$limit" "$@" > "$OUT/step.tmp" 2>&1
  local rc=$?
  cat "$OUT/step.tmp" >> "$OUT/steps.log"
  echo "== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$OUT/steps.log"
  grep -v '^    ' "$OUT/step.tmp" | tail -n 22
  rm -f "$OUT/step.tmp"
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"

# issue 11: 1,000,000 customers x 10,000 items, dim 64, top-50 on CUDA (scores back in host memory)
step scale 120 $PY bench/scale.py --no-store --customers 1000000 --items 10000 --dim 64 --k 50 \
  --batch-sizes 8192 16384 65536 --precisions auto tf32 --threads 4 --max-seconds-per-run 20 --out "$OUT"

# issue 9: the flagship on completejourney-sample and MovieLens-small without a time budget
QUALITY=($PY bench/quality.py --dataset completejourney movielens --threads 8 --out "$OUT"
         --movielens "$GPU/datasets/movielens-small" --completejourney "$GPU/datasets/completejourney-sample"
         --cache "$GPU/cache" --text-model "$GPU/model" --only "flagship (baskets+text)")
step quality_default 220 "${QUALITY[@]}" --tag _gpu --seq-params '{"max_train_seconds": null, "max_epochs": 60}'
# the CUDA path is the CPU path: flagship trained and scored on both, score difference and top-10 overlap
step device_check 90 $PY bench/device_check.py --customers 50000 --epochs 3 --threads 8 --out "$OUT"
# the engine's tests on CUDA ("auto" resolves to it): the CUDA-only agreement test runs, the rest take the CUDA path
step engine_tests 90 $PY -m pytest -q -p no:cacheprovider -o addopts="" --confcutdir=tests/recommendations/engine \
  tests/recommendations/engine/test_batch_scoring.py tests/recommendations/engine/test_device.py \
  tests/recommendations/engine/test_no_django.py tests/recommendations/engine/test_sequential.py -rs
step quality_large 60 "${QUALITY[@]}" --tag _gpu_large \
  --seq-params '{"max_train_seconds": null, "max_epochs": 60, "dim": 128, "max_len": 100}'
ls -la "$OUT"
