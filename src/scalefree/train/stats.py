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
``iqr_log2`` (S, Q) whole-model spread. Read it with :func:`load_stats`.

Recording: :class:`UpdateStatistics` is the one recorder, used by ``scalefree train`` (as a
callback, :mod:`scalefree.train.callbacks`) and usable in any plain torch loop around
``optimizer.step()`` (docs/training-loop.md). :class:`StatsRecorder` is the lower-level writer
for callers that compute the four quantities themselves.
"""

from __future__ import annotations

import io as _io
import math
import sys
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from scalefree.io import atomic_write_bytes, open_regular
from scalefree.optim.adam_family import AdamFamily
from scalefree.optim.groups import is_norm_module
from scalefree.rundir.layout import stats_dir, stats_files, stats_name
from scalefree.rundir.read import DamagedFile
from scalefree.train.callbacks import Callback

if TYPE_CHECKING:
    from scalefree.train.run_state import RunState

QUANTITIES = ("update_over_alpha", "update", "grad", "param")
MIN_EXP, MAX_EXP = -27, 0
BIN_EXPONENTS = np.arange(MIN_EXP, MAX_EXP + 1)
NUM_BINS = len(BIN_EXPONENTS)


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


def write_epoch_file(
    directory: Path,
    epoch: int,
    rows: Sequence[tuple[int, int, torch.Tensor]],
    layer_names: Sequence[str],
) -> Path | None:
    """Write one epoch's snapshots ``(iteration, step, counts (Q, L, B))`` to
    ``directory/epoch_EEEE.npz`` atomically (the layout in the module docstring); None if none."""
    if not rows:
        return None
    counts = torch.stack([r[2] for r in rows]).cpu().numpy().astype(np.int32)
    payload = {
        "epoch": np.full(len(rows), epoch, dtype=np.int64),
        "iteration": np.array([r[0] for r in rows], dtype=np.int64),
        "step": np.array([r[1] for r in rows], dtype=np.int64),
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


# What a statistics file holds: array name -> (number of dimensions, allowed dtype kinds).
STATS_ARRAYS = {
    "epoch": (1, "iu"),
    "iteration": (1, "iu"),
    "step": (1, "iu"),
    "counts": (4, "iu"),
    "layers": (1, "U"),
    "quantities": (1, "U"),
    "bin_exponents": (1, "iu"),
}
# Uncompressed bytes of one file's arrays above which it is refused unread: a ResNet-110 snapshot
# is ~50 kB, so this allows thousands of snapshots per epoch.
MAX_STATS_BYTES = 256 * 1024 * 1024


class NoStatistics(FileNotFoundError):
    """A run without (readable) update statistics."""


def _read_member(path: Path, z: zipfile.ZipFile, name: str) -> np.ndarray:
    """One array of an npz, checked against STATS_ARRAYS before its data is read: never an object
    array (no pickle), never a declared shape larger than the bytes the member holds."""
    ndim, kinds = STATS_ARRAYS[name]
    info = z.getinfo(f"{name}.npy")
    with z.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(f)
        if dtype.hasobject or dtype.kind not in kinds or len(shape) != ndim:
            want = "integer" if kinds == "iu" else "string"
            raise DamagedFile(
                path, f"{name!r} is a {len(shape)}-d {dtype} array, not {ndim}-d {want}"
            )
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes != info.file_size - f.tell():
            raise DamagedFile(
                path, f"{name!r} declares shape {shape} ({nbytes} bytes) but holds "
                f"{info.file_size - f.tell()} bytes"
            )  # fmt: skip
        data = f.read(nbytes)
    if len(data) != nbytes:
        raise DamagedFile(path, f"{name!r} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def read_stats_file(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of one ``stats/epoch_EEEE.npz`` (module docstring); DamagedFile naming the file
    and the problem when it is not one of ours (missing arrays, wrong dtype or shape, too large)."""
    path = Path(path)
    try:
        with open_regular(path) as raw, zipfile.ZipFile(raw) as z:
            names = {i.filename: i for i in z.infolist()}
            missing = [k for k in STATS_ARRAYS if f"{k}.npy" not in names]
            if missing:
                raise DamagedFile(path, f"no {', '.join(map(repr, missing))} array")
            size = sum(names[f"{k}.npy"].file_size for k in STATS_ARRAYS)
            if size > MAX_STATS_BYTES:
                raise DamagedFile(
                    path, f"{size} bytes of arrays, above {MAX_STATS_BYTES}; not read"
                )
            arrays = {k: _read_member(path, z, k) for k in STATS_ARRAYS}
    except (
        OSError,
        EOFError,
        ValueError,
        zipfile.BadZipFile,
        zlib.error,
        NotImplementedError,
    ) as exc:
        raise DamagedFile(
            path, f"not a readable statistics file ({type(exc).__name__}: {exc})"
        ) from None
    _check_consistent(path, arrays)
    return arrays


def _check_consistent(path: Path, a: dict[str, np.ndarray]) -> None:
    s, shape = len(a["epoch"]), a["counts"].shape
    if not len(a["iteration"]) == len(a["step"]) == s or shape[0] != s:
        raise DamagedFile(path, "epoch, iteration, step and counts differ in length")
    if tuple(a["quantities"].tolist()) != QUANTITIES:
        raise DamagedFile(path, f"quantities {a['quantities'].tolist()}, not {list(QUANTITIES)}")
    if not np.array_equal(a["bin_exponents"], BIN_EXPONENTS):
        raise DamagedFile(path, "bin exponents are not this version's")
    if shape[1:] != (len(QUANTITIES), len(a["layers"]), NUM_BINS):
        raise DamagedFile(path, f"counts of shape {shape} do not match its layers and bins")
    if (a["counts"] < 0).any():
        raise DamagedFile(path, "negative counts")


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(f"warning: {message}", file=sys.stderr)


def load_stats(run_dir: str | Path) -> UpdateStats:
    """Read every ``stats/epoch_*.npz`` of a run, in epoch order.

    A damaged file (read_stats_file) is named on stderr and skipped, as is one whose layers differ
    from the first readable file; NoStatistics (a FileNotFoundError) when none is readable."""
    parts = []
    for _, f in stats_files(run_dir):
        try:
            part = read_stats_file(f)
            if parts and part["layers"].tolist() != parts[0]["layers"].tolist():
                raise DamagedFile(f, f"its layers differ from those of {parts[0]['path'].name}")
        except DamagedFile as exc:
            _warn_once(f"{exc}; these statistics are left out")
            continue
        parts.append(part | {"path": f})
    if not parts:
        raise NoStatistics(
            f"no readable update statistics in {stats_dir(run_dir)} (train with --store-stats)"
        )
    return UpdateStats(
        epoch=np.concatenate([p["epoch"] for p in parts]).astype(np.int64),
        iteration=np.concatenate([p["iteration"] for p in parts]).astype(np.int64),
        step=np.concatenate([p["step"] for p in parts]).astype(np.int64),
        counts=np.concatenate([p["counts"] for p in parts]).astype(np.int64),
        layers=tuple(str(x) for x in parts[0]["layers"]),
        quantities=tuple(str(x) for x in parts[0]["quantities"]),
        bin_exponents=np.array(parts[0]["bin_exponents"]),
    )
