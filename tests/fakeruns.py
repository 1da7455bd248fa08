"""Fake run directories, written exactly as the trainer writes them (docs/design.md, section 2).

Tests of the analysis side (tables, figures, reports, sweep collection) need finished runs with
known errors and known update-magnitude spreads, without training anything. ``make_run`` writes one
run directory through the same contracts the trainer uses (``RunConfig.run_name``/``to_dict``,
``scalefree.io`` atomic writes, ``StatsRecorder``); ``make_grid`` writes a whole eta0 x weight-decay
sweep.

Synthetic update statistics: |u|/alpha is drawn log-normally, log2|u|/alpha ~ N(mu_l, sigma) with a
small per-layer offset mu_l, and sigma chosen so that the whole-model log2 interquartile range at the
final epoch is close to ``spread`` (for a normal, IQR = 1.349 sigma). Earlier epochs are narrower,
as in the paper's Appendix C where AdamL2's updates disperse as training goes on.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalefree import __version__
from scalefree.io import atomic_write_json, atomic_write_text
from scalefree.rundir import CONFIG_FILE, METRICS_FILE, RESULT_FILE, STATS_DIR
from scalefree.train.config import RunConfig
from scalefree.train.stats import QUANTITIES, StatsRecorder

# A CIFAR-10 epoch at batch size 128: ceil(50000 / 128) iterations.
STEPS_PER_EPOCH = 391
# Layers of a miniature network: names like a CIFAR ResNet's, a few hundred coordinates each so a
# snapshot is quick to draw but still gives smooth histograms.
FAKE_LAYERS: tuple[tuple[str, int], ...] = (
    ("conv1.weight", 216),
    ("layer1.0.conv1.weight", 576),
    ("layer1.0.conv2.weight", 576),
    ("layer2.0.conv1.weight", 576),
    ("layer3.0.conv1.weight", 576),
    ("linear.weight", 320),
    ("linear.bias", 10),
)
RUN_STATUSES = ("completed", "diverged", "failed", "incomplete")
IQR_PER_SIGMA = 1.3489795  # interquartile range of a standard normal


def default_spread(optim_method: str) -> float:
    """Final-epoch log2 IQR used when none is given: wide for the non-scale-free AdamL2, narrow for
    the rest, the qualitative picture of the paper's Figure 3 (right) and Appendix C."""
    return 6.0 if optim_method == "AdamL2" else 2.5


def make_run(
    root: str | Path,
    *,
    optim_method: str,
    eta0: float,
    weight_decay: float,
    model: str = "ResNet20",
    batch_norm: bool = False,
    dataset: str = "CIFAR10",
    seed: int = 0,
    status: str = "completed",
    test_acc: float = 0.9,
    epochs: int = 3,
    with_stats: bool = True,
    spread: float | None = None,
    **config_overrides: Any,
) -> Path:
    """Write one fake run directory under ``root`` and return its path.

    ``status`` is ``completed``, ``diverged``, ``failed`` or ``incomplete`` (no result.json, as
    while a run is still training). A completed run's final test accuracy is exactly ``test_acc``;
    the others stop half-way. ``config_overrides`` are further ``RunConfig`` fields (e.g.
    ``loss_multiplier=10``).
    """
    if status not in RUN_STATUSES:
        raise ValueError(f"status must be one of {RUN_STATUSES}, got {status!r}")
    cfg = RunConfig(
        optim_method=optim_method,
        eta0=eta0,
        weight_decay=weight_decay,
        model=model,
        batch_norm=batch_norm,
        dataset=dataset,
        seed=seed,
        train_epochs=epochs,
        log_folder=str(root),
        store_stats=with_stats,
        store_stats_interval=200,
        **config_overrides,
    )
    run_dir = Path(root) / cfg.run_name()
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(cfg.run_name().encode()))

    # As the trainer writes it: every setting, the run name, and the environment nested under
    # "env" (readers must ignore keys that are not RunConfig fields).
    config = cfg.to_dict() | {
        "run_name": run_dir.name,
        "env": {
            "scalefree_version": __version__,
            "git_commit": "0" * 40,
            "torch_version": torch.__version__,
            "device": "cpu",
            "eval_split": "val" if cfg.validation else "test",
        },
    }
    atomic_write_json(run_dir / CONFIG_FILE, config)

    # How many epochs ran: a run that stopped early got through about half of them.
    done = epochs if status == "completed" else max(epochs // 2, 1)
    if status in ("diverged", "failed"):
        done = max(done - 1, 0)  # the epoch in which it stopped never finished

    rows = [_metrics_row(cfg, e, epochs, test_acc, rng) for e in range(1, done + 1)]
    atomic_write_text(run_dir / METRICS_FILE, "".join(_json_line(r) for r in rows))

    if with_stats:
        final_spread = default_spread(optim_method) if spread is None else float(spread)
        _write_stats(run_dir / STATS_DIR, cfg, done, epochs, final_spread, rng)

    if status == "incomplete":
        return run_dir
    last = rows[-1] if rows else None
    stopped = done + 1  # the epoch in which a diverged or failed run stopped
    result = {
        "status": status,
        "epochs_completed": done if status == "completed" else stopped,
        "steps": done * STEPS_PER_EPOCH + (0 if status == "completed" else 17),
        "wall_time_s": last["wall_time_s"] if last else 0.0,
        # The trainer keeps "final" and "test_error" for completed runs only; readers charge the
        # others DIVERGED_ERROR (RunRecord.test_error).
        "final": last if status == "completed" else None,
        "last_evaluation": last,
        "test_error": (1.0 - last["test_acc"]) if status == "completed" else None,
        "best_test_acc": max(r["test_acc"] for r in rows) if rows else None,
        "eval_split": "val" if cfg.validation else "test",
        "message": {
            "completed": None,
            "diverged": f"training loss became nan at epoch {stopped}, step "
            f"{done * STEPS_PER_EPOCH + 17}",
            "failed": "RuntimeError: CUDA out of memory",
        }[status],
    }
    atomic_write_json(run_dir / RESULT_FILE, result)
    return run_dir


def make_grid(
    root: str | Path,
    methods: Iterable[str],
    eta0s: Iterable[float],
    wds: Iterable[float],
    seeds: Iterable[int],
    error_fn: Callable[[str, float, float, int], float | str],
    *,
    spread_fn: Callable[[str, float, float, int], float | None] | None = None,
    **run_kwargs: Any,
) -> list[Path]:
    """A whole fake sweep: one run per (method, eta0, weight decay, seed).

    ``error_fn(method, eta0, wd, seed)`` returns the final test error of a completed run, or one of
    the statuses ``"diverged"``, ``"failed"``, ``"incomplete"``. ``spread_fn`` (same arguments) sets
    each run's update spread; ``run_kwargs`` go to :func:`make_run` (model, dataset, epochs, ...).
    """
    eta0s, wds, seeds = list(eta0s), list(wds), list(seeds)
    paths = []
    for method in methods:
        for eta0 in eta0s:
            for wd in wds:
                for seed in seeds:
                    outcome = error_fn(method, eta0, wd, seed)
                    kwargs = dict(run_kwargs)
                    if spread_fn is not None:
                        kwargs["spread"] = spread_fn(method, eta0, wd, seed)
                    if isinstance(outcome, str):
                        kwargs["status"] = outcome
                    else:
                        kwargs["test_acc"] = 1.0 - float(outcome)
                    paths.append(
                        make_run(
                            root,
                            optim_method=method,
                            eta0=eta0,
                            weight_decay=wd,
                            seed=seed,
                            **kwargs,
                        )
                    )
    return paths


# ---------------------------------------------------------------------------------- internals
def _json_line(row: dict[str, Any]) -> str:
    return json.dumps(row) + "\n"


def _metrics_row(
    cfg: RunConfig, epoch: int, epochs: int, test_acc: float, rng: np.random.Generator
) -> dict[str, Any]:
    """One evaluation: loss decays geometrically, accuracy rises to exactly ``test_acc`` at the
    last epoch (so a completed run's test error is what the test asked for)."""
    frac = epoch / epochs
    train_loss = cfg.loss_multiplier * (2.3 * math.exp(-4.0 * frac) + 1e-3)
    noise = float(rng.normal(0, 0.003)) if epoch < epochs else 0.0
    acc = test_acc - (test_acc - 0.1) * math.exp(-4.0 * frac) * (epoch < epochs) + noise
    acc = min(max(acc, 0.0), 1.0)
    return {
        "epoch": epoch,
        "step": epoch * STEPS_PER_EPOCH,
        "train_loss": train_loss,
        "train_acc": min(1.0, acc + 0.05),
        "test_loss": cfg.loss_multiplier * (0.3 + 2.0 * math.exp(-4.0 * frac)),
        "test_acc": acc,
        "lr": cfg.eta0,
        "wall_time_s": 12.5 * epoch,
    }


def _write_stats(
    stats_dir: Path,
    cfg: RunConfig,
    done: int,
    epochs: int,
    final_spread: float,
    rng: np.random.Generator,
) -> None:
    names = [n for n, _ in FAKE_LAYERS]
    sizes = [s for _, s in FAKE_LAYERS]
    recorder = StatsRecorder(stats_dir, names)
    offsets = np.linspace(-0.5, 0.5, len(sizes))
    for epoch in range(1, done + 1):
        frac = epoch / epochs
        # Wider as training goes on; exactly ``final_spread`` at the last epoch.
        sigma_total = final_spread * (0.6 + 0.4 * frac) / IQR_PER_SIGMA
        shift = 0.3 * sigma_total * offsets  # per-layer centres: the network's multiple scales
        sigma = math.sqrt(max(sigma_total**2 - float(np.var(shift)), 1e-6))
        mu = -9.0 - 2.0 * frac
        for iteration in range(0, STEPS_PER_EPOCH, cfg.store_stats_interval):
            over_alpha = [2.0 ** rng.normal(mu + s, sigma, size=n) for s, n in zip(shift, sizes)]
            quantities = {
                "update_over_alpha": over_alpha,
                "update": [cfg.eta0 * a for a in over_alpha],
                "grad": [2.0 ** rng.normal(-12.0 + s, 2.5, size=n) for s, n in zip(shift, sizes)],
                "param": [rng.normal(0.0, 0.05, size=n) for n in sizes],
            }
            assert set(quantities) == set(QUANTITIES)
            recorder.record(
                epoch,
                iteration,
                (epoch - 1) * STEPS_PER_EPOCH + iteration,
                {q: [torch.from_numpy(np.asarray(v)) for v in vs] for q, vs in quantities.items()},
            )
        recorder.flush(epoch)
