#!/bin/bash
# Issue 14 at this machine's budget: the decay-rules comparison through `scalefree sweep` (the same
# launch path as `reproduce decay-rules`), ResNet20 without BN on the real CIFAR-10 subset, the five
# rules at eta0 1e-3 x decay timescale {10, 50} epochs, 6 epochs, update statistics once per epoch.
# Resumable: rerunning skips finished runs and resumes the others.
set -u
export PYTHONPATH="${CHECKOUT:-.}/src"  # CHECKOUT: the scalefree checkout
python -m scalefree sweep --model ResNet20 --no-batch-norm --dataset CIFAR10 \
  --dataroot "${DATAROOT:-../shared/data/cifar10-subset}" --log-folder "${LOGS:-logs/decay-rules-cpu}" \
  --optim-methods AdamW AdamC CWD CAdamW AdamProx --eta0-vals 0.001 --decay-timescale-vals 10 50 \
  --train-epochs 6 --batchsize 128 --eval-interval 1 --scheduler None --store-stats \
  --store-stats-interval 40 --progress plain --workers 1
