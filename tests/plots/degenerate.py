"""Log folders a first user really produces: one epoch, one method, one depth, runs that never
rose above chance, grids full of diverged and missing cells. Each builder writes fake runs (see
tests.fakeruns) into ``root`` and returns it; the plot tests draw every figure from each.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.fakeruns import make_grid, make_run

ETA0S = (1e-4, 1e-3)
WDS = (0.0, 1e-4)


def one_epoch(root: Path) -> Path:
    """Two methods, 2 x 2 grid, every run a single epoch: curves are one point each."""

    def err(method: str, eta0: float, wd: float, seed: int) -> float:
        return 0.55 + (0.05 if method == "AdamL2" else 0.0) + (0.02 if eta0 == 1e-4 else 0.0)

    make_grid(root, ("AdamL2", "AdamW"), ETA0S, WDS, (0,), err, epochs=1)
    return root


def one_method(root: Path) -> Path:
    """AdamW only: one heatmap panel, one histogram panel, one legend entry."""

    def err(method: str, eta0: float, wd: float, seed: int) -> float:
        return 0.2 + (0.03 if eta0 == 1e-4 else 0.0) + (0.01 if wd == 0 else 0.0)

    make_grid(root, ("AdamW",), ETA0S, WDS, (0,), err, epochs=3)
    return root


def at_chance(root: Path) -> Path:
    """Nothing learned: every test error between 0.886 and 0.898 on CIFAR-10 (chance 0.9), the
    spreads of both methods almost equal. Two depths, so the correlation is drawn too."""
    errors = {"AdamL2": (0.898, 0.891), "AdamW": (0.887, 0.894)}

    for depth_index, model in enumerate(("ResNet20", "ResNet56")):

        def err(method: str, eta0: float, wd: float, seed: int, k: int = depth_index) -> float:
            base = errors[method][k]
            return base + (0.002 if eta0 == 1e-4 else 0.0) - (0.001 if wd else 0.0)

        make_grid(
            root,
            ("AdamL2", "AdamW"),
            (1e-3,),
            WDS,
            (0,),
            err,
            epochs=2,
            model=model,
            spread_fn=lambda *a: 1.1196,
        )
    return root


def diverged(root: Path) -> Path:
    """NaN and diverged cells: AdamL2 diverged everywhere but one cell, one AdamW cell has no run
    at all, another is still running, another diverged for one of two seeds."""

    def err(method: str, eta0: float, wd: float, seed: int) -> float | str:
        if method == "AdamL2":
            return 0.3 if (eta0, wd) == (1e-4, 0.0) else "diverged"
        if (eta0, wd) == (1e-3, 1e-4):
            return "diverged" if seed == 1 else 0.25
        if (eta0, wd) == (1e-4, 1e-4):
            return "incomplete"
        return 0.2 + seed * 0.01

    make_grid(root, ("AdamL2", "AdamW"), ETA0S, WDS, (0, 1), err, epochs=2)
    # A third eta0 for AdamW only: AdamL2's panel has a row without any run (NaN cells).
    make_run(root, optim_method="AdamW", eta0=1e-2, weight_decay=0.0, test_acc=0.7, epochs=2)
    return root


def one_depth(root: Path) -> Path:
    """Both methods on a single model: the correlation figure is one point per series."""
    for method, acc in (("AdamL2", 0.80), ("AdamW", 0.84)):
        make_run(root, optim_method=method, eta0=1e-3, weight_decay=1e-4, test_acc=acc, epochs=2)
    return root


CASES: dict[str, Callable[[Path], Path]] = {
    "one_epoch": one_epoch,
    "one_method": one_method,
    "at_chance": at_chance,
    "diverged": diverged,
    "one_depth": one_depth,
}
