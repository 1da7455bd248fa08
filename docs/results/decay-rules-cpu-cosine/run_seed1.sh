#!/bin/bash
# A second seed (seed 1: other initial weights and batch order) for each method's two best cells
# of run.sh: eta0 1e-3 x timescale 10 and eta0 5e-3 x timescale 2. Same settings otherwise.
set -u
export PYTHONPATH="${CHECKOUT:-.}/src"  # CHECKOUT: the scalefree checkout
for cell in "0.001 10" "0.005 2"; do
  set -- $cell
  python -m scalefree sweep --model ResNet20 --no-batch-norm --dataset CIFAR10 \
    --dataroot "${DATAROOT:-../shared/data/cifar10-subset}" --log-folder "${LOGS:-logs/decay-rules-cpu-cosine}" \
    --optim-methods AdamW AdamC CWD CAdamW AdamProx --eta0-vals "$1" --decay-timescale-vals "$2" \
    --seeds 1 --train-epochs 6 --batchsize 128 --eval-interval 1 --scheduler Cosine --store-stats \
    --store-stats-interval 40 --progress plain --workers 1
done
