#!/bin/bash
# Issue 13 CPU claim run: ResNet20/32/44 without BN, AdamL2 vs AdamW at the reference code's settings,
# real CIFAR-10 subset, 12 epochs, update statistics once per epoch (40 steps). One core, nice 19.
# Resumable: rerunning this script skips finished runs and resumes interrupted ones.
set -u
export PYTHONPATH="${CHECKOUT:-.}/src"  # CHECKOUT: the scalefree checkout
PY=python
LOG=logs/claim-cpu/CIFAR10
common="--train-epochs 12 --batchsize 128 --eval-interval 1 --log-folder $LOG --dataroot ../shared/data/cifar10-subset --dataset CIFAR10 --no-batch-norm --scheduler None --store-stats --store-stats-interval 40 --decay-convention schedule --progress plain --workers 1"
for spec in "ResNet20 0.001" "ResNet32 0.001" "ResNet44 0.0005"; do
  set -- $spec
  taskset -c 1 nice -n 19 $PY -m scalefree sweep --model $1 --optim-methods AdamL2 --eta0-vals $2 --weight-decay-vals 0.0005 $common
  taskset -c 1 nice -n 19 $PY -m scalefree sweep --model $1 --optim-methods AdamW --eta0-vals $2 --weight-decay-vals 0.00005 $common
done
echo ALL-DONE
