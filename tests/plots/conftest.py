"""Fake sweeps shared by the plot tests (built once per session: writing stats is the slow part)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakeruns import make_grid, make_run

METHODS = ("AdamL2", "AdamW")
ETA0S = (1e-4, 1e-3, 1e-2)
WDS = (0.0, 1e-4, 1e-3)
SEEDS = (0, 1)
SEED_STEP = 0.01  # error of seed s = base + s * SEED_STEP: mean base + 0.005, std 0.01 / sqrt(2)

# Base error per (method, eta0, wd). AdamL2's best is interior (1e-3, 1e-4); AdamW's best is
# (1e-3, 1e-3), on the highest weight decay, i.e. on the grid edge.
BASE = {
    "AdamL2": {
        (1e-4, 0.0): 0.30,
        (1e-4, 1e-4): 0.25,
        (1e-4, 1e-3): 0.27,
        (1e-3, 0.0): 0.20,
        (1e-3, 1e-4): 0.12,
        (1e-3, 1e-3): 0.18,
        (1e-2, 0.0): 0.40,
        (1e-2, 1e-4): 0.35,
        (1e-2, 1e-3): None,  # both seeds diverge
    },
    "AdamW": {
        (1e-4, 0.0): 0.22,
        (1e-4, 1e-4): 0.20,
        (1e-4, 1e-3): 0.19,
        (1e-3, 0.0): 0.15,
        (1e-3, 1e-4): 0.11,
        (1e-3, 1e-3): 0.10,
        (1e-2, 0.0): 0.30,
        (1e-2, 1e-4): 0.28,
        (1e-2, 1e-3): 0.26,
    },
}
PARTIAL_DIVERGED = ("AdamW", 1e-2, 0.0, 1)  # only seed 1 diverges here
INCOMPLETE = ("AdamW", 1e-4, 1e-4, 1)  # still running: no result.json


def grid_error(method: str, eta0: float, wd: float, seed: int) -> float | str:
    if (method, eta0, wd, seed) == PARTIAL_DIVERGED:
        return "diverged"
    if (method, eta0, wd, seed) == INCOMPLETE:
        return "incomplete"
    base = BASE[method][(eta0, wd)]
    return "diverged" if base is None else base + SEED_STEP * seed


@pytest.fixture(scope="session")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One configuration (CIFAR10 ResNet20, no BN): 2 methods x 3 x 3 grid x 2 seeds."""
    root = tmp_path_factory.mktemp("sweep")
    make_grid(root, METHODS, ETA0S, WDS, SEEDS, grid_error, epochs=3)
    return root


# Depth study for the correlation figure: per model, best errors and spreads we choose.
DEPTHS = {
    # model: (AdamL2 best error, AdamW best error, AdamL2 spread, AdamW spread)
    "ResNet20": (0.10, 0.09, 4.0, 2.0),
    "ResNet56": (0.13, 0.10, 5.5, 2.2),
    "ResNet110": (0.18, 0.11, 7.0, 2.4),
}


@pytest.fixture(scope="session")
def depth_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three ResNets without BN, AdamL2 and AdamW on a 2 x 1 grid each (the best setting and a
    worse one), one seed, plus a BN ResNet20 with AdamL2 only (no pair: left out)."""
    root = tmp_path_factory.mktemp("depths")
    for model, (e_l2, e_w, s_l2, s_w) in DEPTHS.items():
        for method, err, spread in (("AdamL2", e_l2, s_l2), ("AdamW", e_w, s_w)):
            make_run(
                root,
                optim_method=method,
                eta0=1e-3,
                weight_decay=1e-4,
                model=model,
                test_acc=1 - err,
                spread=spread,
            )
            make_run(
                root,
                optim_method=method,
                eta0=1e-2,
                weight_decay=1e-4,
                model=model,
                test_acc=1 - err - 0.05,
                spread=spread + 1,
                with_stats=False,
            )
    make_run(
        root,
        optim_method="AdamL2",
        eta0=1e-3,
        weight_decay=0.0,
        model="ResNet20",
        batch_norm=True,
        test_acc=0.92,
        with_stats=False,
    )
    return root
