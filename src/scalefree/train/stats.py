"""Update statistics: power-of-two histograms of update magnitudes (docs/design.md, "Statistics").

Four quantities per snapshot, each over every parameter except normalization layers:

* ``update_over_alpha``: |u| / alpha, with u = lr_t * m_hat / D the Adam step (paper Figure 3);
* ``update``: |u|;
* ``grad``: |grad f| (the loss gradient, before any L2 term);
* ``param``: |x| before the step.

Bins are powers of two: bin ``e`` (e = -27 .. 0) counts values in [2^e, 2^(e+1)); the lowest bin
also holds everything smaller (zeros included) and the highest everything >= 1. Counts are computed
on the training device with one ``bincount`` per quantity over all layers at once and moved to the
host as int32 (a ResNet-110 snapshot is ~50 kB, against ~20 MB of raw arrays in the reference code).

Storage: ``stats/epoch_EEEE.npz`` per epoch (written atomically at the epoch's end) with
``epoch`` (S,), ``iteration`` (S,) in-epoch iteration, ``step`` (S,) global step,
``counts`` (S, Q, L, B) int32, ``layers`` (L,), ``quantities`` (Q,), ``bin_exponents`` (B,),
``iqr_log2`` (S, Q) whole-model spread. The file format, its writer and its reader
(:func:`load_stats`) are :mod:`scalefree.rundir.stats`; their names stay importable from here.

Recording: :class:`UpdateStatistics` is the one recorder, used by ``scalefree train`` (as a
callback, :mod:`scalefree.train.callbacks`) and usable in any plain torch loop around
``optimizer.step()`` (docs/training-loop.md). :class:`StatsRecorder` is the lower-level writer
for callers that compute the four quantities themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from scalefree.optim.adam_family import AdamFamily
from scalefree.optim.groups import is_norm_module
from scalefree.rundir.layout import stats_dir
from scalefree.rundir.stats import (  # noqa: F401 - the file format's names, kept here
    BIN_EXPONENTS,
    MAX_EXP,
    MAX_STATS_BYTES,
    MIN_EXP,
    NUM_BINS,
    QUANTITIES,
    NoStatistics,
    UpdateStats,
    iqr_log2,
    load_stats,
    read_stats_file,
    write_stats_file,
)
from scalefree.train.callbacks import Callback

if TYPE_CHECKING:
    from scalefree.train.run_state import RunState


def log2_bin_index(values: torch.Tensor) -> torch.Tensor:
    """Bin index (0 .. NUM_BINS-1) of |values|: floor(log2|v|) clamped to [MIN_EXP, MAX_EXP].

    ``frexp`` gives |v| = m * 2^e with m in [0.5, 1), so floor(log2|v|) = e - 1 exactly (no
    rounding at bin edges, unlike ``floor(log2(v))`` in floating point). Zeros (e = 0) land in the
    lowest bin through the clamp because their exponent is forced there.
    """
    a = values.abs()
    _, e = torch.frexp(a)
    e = torch.where(a > 0, e - 1, torch.full_like(e, MIN_EXP))
    return (e.clamp_(MIN_EXP, MAX_EXP) - MIN_EXP).to(torch.int64)


def histogram_counts(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """(L, NUM_BINS) int64 counts of each tensor, computed with one bincount on their device."""
    if not tensors:
        return torch.zeros(0, NUM_BINS, dtype=torch.int64)
    idx = torch.cat(
        [log2_bin_index(t.detach().reshape(-1)) + i * NUM_BINS for i, t in enumerate(tensors)]
    )
    return torch.bincount(idx, minlength=len(tensors) * NUM_BINS).view(len(tensors), NUM_BINS)


def write_epoch_file(
    directory: Path,
    epoch: int,
    rows: Sequence[tuple[int, int, torch.Tensor]],
    layer_names: Sequence[str],
) -> Path | None:
    """Write one epoch's snapshots ``(iteration, step, counts (Q, L, B))`` to
    ``directory/epoch_EEEE.npz`` (:func:`scalefree.rundir.stats.write_stats_file`); None if none."""
    if not rows:
        return None
    counts = torch.stack([r[2] for r in rows]).cpu().numpy().astype(np.int32)
    iterations, steps = [r[0] for r in rows], [r[1] for r in rows]
    return write_stats_file(directory, epoch, iterations, steps, counts, layer_names)


class StatsRecorder:
    """Accumulates snapshots during an epoch; ``flush(epoch)`` writes them to ``stats/``.

    ``layer_names`` fixes the order of layers; every ``record`` call passes tensors in that order.
    """

    def __init__(self, stats_dir: str | Path, layer_names: Sequence[str]) -> None:
        self.stats_dir = Path(stats_dir)
        self.layer_names = list(layer_names)
        self._rows: list[tuple[int, int, int, torch.Tensor]] = []

    def record(
        self,
        epoch: int,
        iteration: int,
        step: int,
        quantities: dict[str, Sequence[torch.Tensor]],
    ) -> None:
        counts = torch.stack([histogram_counts(quantities[q]) for q in QUANTITIES])  # (Q, L, B)
        # Keep on device until flush: no host sync in the training loop.
        self._rows.append((epoch, iteration, step, counts))

    def flush(self, epoch: int) -> Path | None:
        rows = [r[1:] for r in self._rows if r[0] == epoch]
        self._rows = [r for r in self._rows if r[0] != epoch]
        return write_epoch_file(self.stats_dir, epoch, rows, self.layer_names)

    def discard(self) -> None:
        self._rows.clear()


def stats_layers(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Every parameter except those of normalization layers, in model order."""
    out = []
    for mod_name, module in model.named_modules():
        if is_norm_module(module):
            continue
        for p_name, p in module.named_parameters(recurse=False):
            if p.requires_grad:
                out.append((f"{mod_name}.{p_name}" if mod_name else p_name, p))
    return out


def alpha_of(optimizer: torch.optim.Optimizer) -> dict[torch.Tensor, float]:
    """Each parameter's alpha, the step size that ``update_over_alpha`` divides by: the group's
    ``alpha`` if the optimizer has one, else the learning rate before any schedule
    (``initial_lr``, set by a torch scheduler), else ``lr``."""
    return {
        p: float(g.get("alpha", g.get("initial_lr", g["lr"])))
        for g in optimizer.param_groups
        for p in g["params"]
    }


class UpdateStatistics(Callback):
    """Records update statistics around ``optimizer.step()``, in ``scalefree train`` or any loop.

    In a plain torch loop (a runnable example: docs/training-loop.md)::

        rec = UpdateStatistics(model, optimizer, out_dir, interval=10)
        for epoch in range(1, epochs + 1):
            for x, y in batches:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                rec.before_step()      # at record steps: keeps the gradients and weights
                optimizer.step()
                rec.after_step()       # at record steps: histograms of u, u/alpha, grad, x
            rec.end_epoch(epoch)       # writes out_dir/stats/epoch_EEEE.npz
        stats = load_stats(out_dir)

    Every ``interval``-th step of an epoch is recorded (iterations 0, k, 2k, ...). The update u
    is what the optimizer applied: for the Adam family the Adam step it reports
    (``adam_updates``, excluding the weight decay, as in the paper's Figure 3), for any other
    optimizer the change of the parameters. ``alpha`` is read once, here (:func:`alpha_of`), so
    create the recorder after the optimizer's scheduler. Histograms stay on the model's device
    until ``end_epoch``, so recording adds no host synchronization to the loop. ``step`` counts
    ``after_step`` calls (start it at ``start_step`` when continuing a run).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        out_dir: str | Path,
        interval: int = 1,
        *,
        start_step: int = 0,
    ) -> None:
        if interval < 1:
            raise ValueError(f"interval must be >= 1 (record every k-th step), got {interval}")
        self.layers = stats_layers(model)
        self.layer_names = [n for n, _ in self.layers]
        self.optimizer = optimizer
        self.stats_dir = stats_dir(out_dir)
        self.interval = interval
        self.alphas = alpha_of(optimizer)
        self.step = start_step
        self.iteration = 0  # steps since the last end_epoch
        self._snapshot: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None
        self._rows: list[tuple[int, int, torch.Tensor]] = []

    def before_step(self) -> bool:
        """Call between ``backward()`` and ``optimizer.step()``; returns whether this step is
        recorded (then the gradients and the weights before the step are kept)."""
        self._snapshot = None
        if self.iteration % self.interval:
            return False
        params = [p for _, p in self.layers]
        grads = [
            p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params
        ]
        self._snapshot = (grads, [p.detach().clone() for p in params])
        return True

    def after_step(self) -> None:
        """Call right after ``optimizer.step()``: counts the step, histograms a recorded one."""
        self.step += 1
        iteration, self.iteration = self.iteration, self.iteration + 1
        if self._snapshot is None:
            return
        grads, before = self._snapshot
        self._snapshot = None
        if isinstance(self.optimizer, AdamFamily):
            updates = self.optimizer.adam_updates()
            u = [updates.get(p, torch.zeros_like(p)) for _, p in self.layers]
        else:  # torch baselines: the update is the parameter change itself
            u = [b - p.detach() for b, (_, p) in zip(before, self.layers)]
        over_alpha = [t / self.alphas[p] for t, (_, p) in zip(u, self.layers)]
        quantities = dict(zip(QUANTITIES, (over_alpha, u, grads, before)))
        counts = torch.stack([histogram_counts(quantities[q]) for q in QUANTITIES])
        self._rows.append((iteration, self.step, counts))

    def end_epoch(self, epoch: int) -> Path | None:
        """Write the snapshots since the last call as ``stats/epoch_EEEE.npz`` (None if there
        were none) and start counting iterations of the next epoch from 0."""
        rows, self._rows = self._rows, []
        self.iteration = 0
        return write_epoch_file(self.stats_dir, epoch, rows, self.layer_names)

    def discard(self) -> None:
        """Drop snapshots not written yet (a diverged run keeps no statistics of its last epoch)."""
        self._rows.clear()
        self._snapshot = None

    # --- the trainer's hooks (scalefree.train.callbacks): the same calls as in a plain loop
    def on_run_start(self, state: RunState) -> None:
        self.step, self.iteration = state.step, 0
        self.discard()

    def on_before_step(self, state: RunState, iteration: int) -> None:
        self.iteration = iteration
        self.before_step()

    def on_step_end(self, state: RunState, iteration: int) -> None:
        self.after_step()

    def on_epoch_end(self, state: RunState) -> None:
        self.end_epoch(state.epoch)

    def on_run_end(self, state: RunState, result: dict[str, Any] | None) -> None:
        self.discard()
