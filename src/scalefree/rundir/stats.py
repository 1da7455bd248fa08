"""Update-statistics files of a run: ``stats/epoch_EEEE.npz``, their writer and their reader.

One file per epoch with snapshots (written atomically at the epoch's end) with ``epoch`` (S,),
``iteration`` (S,) in-epoch iteration, ``step`` (S,) global step, ``counts`` (S, Q, L, B) int32,
``layers`` (L,), ``quantities`` (Q,), ``bin_exponents`` (B,), ``iqr_log2`` (S, Q) whole-model
spread. Bins are powers of two: bin ``e`` (e = -27 .. 0) counts values in [2^e, 2^(e+1)); the
lowest bin also holds everything smaller (zeros included) and the highest everything >= 1.
What is counted, and when, is the recorder's (:mod:`scalefree.train.stats`); this module owns the
file. Files are data: read with ``allow_pickle=False``.
"""

from __future__ import annotations

import io as _io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scalefree.io import atomic_write_bytes
from scalefree.rundir.layout import stats_dir, stats_files, stats_name

QUANTITIES = ("update_over_alpha", "update", "grad", "param")
MIN_EXP, MAX_EXP = -27, 0
BIN_EXPONENTS = np.arange(MIN_EXP, MAX_EXP + 1)
NUM_BINS = len(BIN_EXPONENTS)


def iqr_log2(counts: np.ndarray) -> np.ndarray:
    """Interquartile range in log2 units of histograms ``counts[..., B]``.

    Quantiles are interpolated linearly in log2 space within a bin (bin e spans [e, e+1]), so the
    result is continuous rather than a whole number of bins.
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(-1, keepdims=True)
    cdf = np.cumsum(counts, -1) / np.where(total == 0, 1, total)

    def quantile(q: float) -> np.ndarray:
        k = np.argmax(cdf >= q, axis=-1)  # first bin whose cdf reaches q
        prev = np.where(
            k > 0, np.take_along_axis(cdf, np.maximum(k - 1, 0)[..., None], -1)[..., 0], 0.0
        )
        here = np.take_along_axis(cdf, k[..., None], -1)[..., 0]
        frac = np.where(here > prev, (q - prev) / np.where(here > prev, here - prev, 1), 0.0)
        return MIN_EXP + k + frac

    out = quantile(0.75) - quantile(0.25)
    return np.where(total[..., 0] > 0, out, np.nan)


def write_stats_file(
    directory: str | Path,
    epoch: int,
    iterations: Sequence[int],
    steps: Sequence[int],
    counts: np.ndarray,
    layer_names: Sequence[str],
) -> Path:
    """Write one epoch's snapshots (``counts`` (S, Q, L, B)) to ``directory/epoch_EEEE.npz``
    atomically (the layout in the module docstring)."""
    counts = np.asarray(counts, dtype=np.int32)
    payload = {
        "epoch": np.full(len(counts), epoch, dtype=np.int64),
        "iteration": np.array(list(iterations), dtype=np.int64),
        "step": np.array(list(steps), dtype=np.int64),
        "counts": counts,
        "layers": np.array(list(layer_names)),
        "quantities": np.array(QUANTITIES),
        "bin_exponents": BIN_EXPONENTS,
        "iqr_log2": iqr_log2(counts.sum(axis=2)),
    }
    buf = _io.BytesIO()
    np.savez_compressed(buf, **payload)
    path = Path(directory) / stats_name(epoch)
    atomic_write_bytes(path, buf.getvalue())
    return path


@dataclass(frozen=True)
class UpdateStats:
    """All snapshots of a run. ``counts[s, q, l, b]``: snapshot s, quantity q, layer l, bin b."""

    epoch: np.ndarray
    iteration: np.ndarray
    step: np.ndarray
    counts: np.ndarray
    layers: tuple[str, ...]
    quantities: tuple[str, ...] = QUANTITIES
    bin_exponents: np.ndarray = field(default_factory=BIN_EXPONENTS.copy)

    def model_counts(self, quantity: str) -> np.ndarray:
        """(S, B) whole-model counts of one quantity."""
        return self.counts[:, self.quantities.index(quantity)].sum(axis=1)

    def fractions(
        self, quantity: str, epoch: int | None = None, layer: str | None = None
    ) -> np.ndarray:
        """Fraction of coordinates per bin, summed over the snapshots of ``epoch`` (all if None),
        for the whole model or one ``layer``."""
        q = self.quantities.index(quantity)
        sel = np.ones(len(self.epoch), bool) if epoch is None else self.epoch == epoch
        if not sel.any():
            raise ValueError(
                f"no statistics for epoch {epoch}; available: {sorted(set(self.epoch.tolist()))}"
            )
        c = self.counts[sel, q]
        c = c[:, self.layers.index(layer)] if layer is not None else c.sum(axis=1)
        total = c.sum()
        return c.sum(axis=0) / max(total, 1)

    def spread(self, quantity: str = "update_over_alpha") -> np.ndarray:
        """(S,) whole-model log2 interquartile range per snapshot."""
        return iqr_log2(self.model_counts(quantity))


def load_stats(run_dir: str | Path) -> UpdateStats:
    """Read every ``stats/epoch_*.npz`` of a run, in epoch order."""
    files = [f for _, f in stats_files(run_dir)]
    if not files:
        raise FileNotFoundError(
            f"no update statistics in {stats_dir(run_dir)} (train with --store-stats)"
        )
    parts = [np.load(f, allow_pickle=False) for f in files]
    return UpdateStats(
        epoch=np.concatenate([p["epoch"] for p in parts]),
        iteration=np.concatenate([p["iteration"] for p in parts]),
        step=np.concatenate([p["step"] for p in parts]),
        counts=np.concatenate([p["counts"] for p in parts]),
        layers=tuple(str(x) for x in parts[0]["layers"]),
        quantities=tuple(str(x) for x in parts[0]["quantities"]),
        bin_exponents=parts[0]["bin_exponents"],
    )


__all__ = [
    "BIN_EXPONENTS",
    "MAX_EXP",
    "MIN_EXP",
    "NUM_BINS",
    "QUANTITIES",
    "UpdateStats",
    "iqr_log2",
    "load_stats",
    "write_stats_file",
]
