"""Update-statistics files of a run: ``stats/epoch_EEEE.npz``, their writer and their reader.

One file per epoch with snapshots (written atomically at the epoch's end) with ``epoch`` (S,),
``iteration`` (S,) in-epoch iteration, ``step`` (S,) global step, ``counts`` (S, Q, L, B) int32,
``layers`` (L,), ``quantities`` (Q,), ``bin_exponents`` (B,), ``iqr_log2`` (S, Q) whole-model
spread. Bins are powers of two: bin ``e`` (e = -27 .. 0) counts values in [2^e, 2^(e+1)); the
lowest bin also holds everything smaller (zeros included) and the highest everything >= 1.
What is counted, and when, is the recorder's (:mod:`scalefree.train.stats`); this module owns the
file. Files are data: each array's header is checked before its bytes are read, never unpickled.
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

import numpy as np

from scalefree.io import atomic_write_bytes, open_regular
from scalefree.rundir.layout import stats_dir, stats_files, stats_name
from scalefree.rundir.read import DamagedFile

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


__all__ = [
    "BIN_EXPONENTS",
    "MAX_EXP",
    "MIN_EXP",
    "MAX_STATS_BYTES",
    "NUM_BINS",
    "NoStatistics",
    "QUANTITIES",
    "UpdateStats",
    "iqr_log2",
    "load_stats",
    "read_stats_file",
    "write_stats_file",
]
