#!/usr/bin/env bash
# The depth study of docs/results/depth-cpu-8px, as it was run (2-core CPU, the CIFAR-10 subset).
# Resumable: rerunning skips finished runs and resumes the others from their checkpoints.
set -euo pipefail
DATA=${DATA:-../shared/data/cifar10-subset}
OUT=${OUT:-docs/results/depth-cpu-8px}
# 1. the fully connected family, the whole protocol (3x3 grid, one extension round, 3 seeds)
scalefree reproduce depth --dataroot "$DATA" --log-folder logs/depth --workers 2 --max-extensions 1
# 2. the CIFAR ResNets, reduced protocol (eta0 1e-3, two decays per method, 20 epochs, 3 seeds),
#    and the study's tables over both log folders
scalefree reproduce depth-resnet --dataroot "$DATA" --log-folder logs/depth-resnet --workers 2 \
  --max-extensions 0 --with-runs logs/depth --out "$OUT"
# 3. diagnose at init and at the end of training: the seed-0 run of every best cell
mapfile -t RUNS < <(python - "$OUT" <<'PY'
import csv, sys
out = sys.argv[1]
best = {(b["model"], b["normalization"], b["method"], float(b["eta0"]), float(b["weight_decay"]))
        for b in csv.DictReader(open(f"{out}/best.csv"))}
for r in csv.DictReader(open(f"{out}/summary.csv")):
    key = (r["model"], r["normalization"], r["method"], float(r["eta0"]), float(r["weight_decay"]))
    if key in best and r["seed"] == "0":
        print(("logs/depth/" if r["family"] == "mlp" else "logs/depth-resnet/") + r["name"])
PY
)
for at in init final; do
  scalefree diagnose --dataroot "$DATA" --at "$at" --skip-existing "${RUNS[@]}"
done
# 4. the study again, now with the diagnose columns (every run is already done: nothing reruns)
scalefree reproduce depth-resnet --dataroot "$DATA" --log-folder logs/depth-resnet --workers 2 \
  --max-extensions 0 --with-runs logs/depth --out "$OUT"
