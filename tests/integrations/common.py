"""A tiny classifier and its data, and the checks every integration's run directory must pass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from scalefree.cli import main
from scalefree.train.stats import QUANTITIES, load_stats, stats_layers

N, DIM, CLASSES = 64, 8, 3


def data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, DIM, generator=g), torch.randint(0, CLASSES, (N,), generator=g)


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(DIM, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, CLASSES))


def check_run_dir(run_dir: Path, model: nn.Module, *, epochs: int, snapshots_per_epoch: int):
    """The statistics hold one histogram per recorded step of every non-norm layer, counting
    each coordinate once; config.json and result.json are what the readers need; and
    ``scalefree plot histogram`` draws them."""
    stats = load_stats(run_dir)
    layers = stats_layers(model)
    assert stats.layers == tuple(n for n, _ in layers)
    assert sorted(set(stats.epoch.tolist())) == list(range(1, epochs + 1))
    assert all((stats.epoch == e).sum() == snapshots_per_epoch for e in range(1, epochs + 1))
    sizes = np.array([p.numel() for _, p in layers])
    for q in range(len(QUANTITIES)):  # every coordinate of every layer in exactly one bin
        np.testing.assert_array_equal(
            stats.counts[:, q].sum(axis=-1),
            np.broadcast_to(sizes, stats.counts.shape[:1] + sizes.shape),
        )
    moved = stats.fractions("update_over_alpha")
    assert moved[stats.bin_exponents > -20].sum() > 0.5  # the steps did move the weights
    config = json.loads((run_dir / "config.json").read_text())
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "completed" and np.isfinite(result["test_error"])
    png = run_dir.parent / "hist.png"
    assert main(["plot", "histogram", str(run_dir.parent), "--out", str(png)]) == 0
    assert png.stat().st_size > 5000
    return stats, config, result
