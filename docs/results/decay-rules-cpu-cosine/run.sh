#!/bin/bash
# Issue 14 at this machine's budget, with the preset's cosine schedule: the decay-rules comparison
# through `scalefree sweep` (the launch path of `reproduce decay-rules`), ResNet20 without BN on the
# real CIFAR-10 subset, the five rules at eta0 {1e-3, 5e-3} x decay timescale {0.5, 2, 10} epochs,
# 6 epochs (240 steps), cosine lr, update statistics every 40 steps, one seed.
# Resumable: rerunning skips finished runs and resumes the others.
set -u
export PYTHONPATH="${CHECKOUT:-.}/src"  # CHECKOUT: the scalefree checkout
python -m scalefree sweep --model ResNet20 --no-batch-norm --dataset CIFAR10 \
  --dataroot "${DATAROOT:-../shared/data/cifar10-subset}" --log-folder "${LOGS:-logs/decay-rules-cpu-cosine}" \
  --optim-methods AdamW AdamC CWD CAdamW AdamProx --eta0-vals 0.001 0.005 --decay-timescale-vals 0.5 2 10 \
  --train-epochs 6 --batchsize 128 --eval-interval 1 --scheduler Cosine --store-stats \
  --store-stats-interval 40 --progress plain --workers 1
