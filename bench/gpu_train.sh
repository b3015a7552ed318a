#!/usr/bin/env bash
# Issue 15, lever 5: the recipe on a lent GPU machine, one prepared run (the second of the two
# calls bench/gpu_bundle.py prints). Writes to $OUT: gpu.txt (device, versions), the run's
# result row (bees-gpu-BUDGET.json, as bench/train_quality.py writes it), its train.log and
# model.json.
#
# BUDGET (default 420 s): one call may run 600 s, and the export, the test scoring and the
# latency runs follow the budget, so 15 minutes cannot run in one call; the device time of a
# session (15 minutes, the machine's start included) cannot hold it either.
# RUN=bees BUDGET=60 SKIP_WHEELS=1 PYTHON=.venv/bin/python OUT=/tmp/out DATASETS=../shared/datasets
# rehearses the script on a CPU machine.
set -uo pipefail
BUDGET=${BUDGET:-420}
RUN=${RUN:-bees-gpu}
PYTHON=${PYTHON:-python3}
OUT=${OUT:?the device machine sets OUT}
if [ -z "${SKIP_WHEELS:-}" ]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .gpu/wheels/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD/src" PYTHONUNBUFFERED=1
if [ -z "${DATASETS:-}" ]; then
    DATASETS=/tmp/datasets
    mkdir -p $DATASETS/bees/images
    cp .gpu/bees-1/images/* .gpu/bees-2/images/* $DATASETS/bees/images/ || exit 1
    cp .gpu/bees-2/output.manifest $DATASETS/bees/ || exit 1
fi
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    nproc
    "$PYTHON" -c "import torch, torchvision, onnxruntime; print('torch', torch.__version__, \
'torchvision', torchvision.__version__, 'onnxruntime', onnxruntime.__version__, \
'cuda', torch.cuda.is_available())"
    echo "frames: $(ls $DATASETS/bees/images | wc -l)"
} | tee "$OUT/gpu.txt"
WORK=/tmp/tq-gpu
CUSTOMLABELS_DATASETS=$DATASETS timeout $((BUDGET + 150)) \
    "$PYTHON" bench/train_quality.py --one "$RUN:$BUDGET" --work $WORK 2>&1 | tail -n 25
echo "exit: $?"
cp $WORK/"$RUN-$BUDGET".json $WORK/"$RUN-$BUDGET"/train.log $WORK/"$RUN-$BUDGET"/model.json \
    "$OUT"/ 2>/dev/null
grep -E "feature cache|steps in the budget|best validation|NMS IoU|time budget" \
    $WORK/"$RUN-$BUDGET"/train.log
