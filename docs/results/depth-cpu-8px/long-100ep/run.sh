#!/usr/bin/env bash
# The 100-epoch follow-up of docs/results/depth-cpu-8px (resumable: --resume, finished runs are skipped).
set -euo pipefail
DATA=${DATA:-../shared/data/cifar10-subset}
run() {  # model, BN flag ("" or --no-batch-norm), method, weight decay, seed
  OMP_NUM_THREADS=1 scalefree train --model "$1" $2 --dataset CIFAR10 --dataroot "$DATA" \
    --optim-method "$3" --eta0 1e-3 --weight-decay "$4" --train-epochs 100 --batchsize 128 \
    --image-size 8 --amp bf16 --validation --no-augment --store-stats --store-stats-interval 1000 \
    --decay-convention schedule --seed "$5" --log-folder logs/depth-long --resume
}
for m in ResNet110 ResNet56 ResNet20; do
  for seed in 0 1 2; do run $m --no-batch-norm AdamW 1e-4 $seed; run $m --no-batch-norm AdamL2 5e-4 $seed; done
  run $m "" AdamW 1e-4 0; run $m "" AdamL2 5e-4 0
done
for at in init final; do
  scalefree diagnose --dataroot "$DATA" --at $at --skip-existing logs/depth-long/*Seed_0*
done
python -c "from scalefree.reproduce.depth_study import write_depth_study as w; w(['logs/depth-long'], 'docs/results/depth-cpu-8px/long-100ep')"
