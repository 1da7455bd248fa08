"""Sweep grids: optimizer methods x eta0 x weight decay x seeds, and the paper's boundary extension.

A :class:`Sweep` is a base :class:`~scalefree.train.config.RunConfig` (every setting that is not
swept) plus, per optimizer method, the axes of its grid (:class:`Axes`: the eta0 values and the
weight-decay values) and the seeds. :meth:`Sweep.configs` expands it to one RunConfig per
(method, eta0, weight decay, seed).

Initial weights. Every run of a sweep starts from the stored initial weights for its
(dataset, model, batch norm, init seed) (docs/design.md, section 2.7; the trainer creates the
file once and every later run loads it). With the default ``init_seed=None`` the init seed is the run's seed, so
all runs *of one seed* share one initialization, and a multi-seed sweep repeats the whole
experiment with a fresh initialization per seed: the paper picks one random initialization per
experiment configuration as "a fixed starting point for all optimizers and hyperparameter
settings" (Section 4), and averaging over seeds should average over that choice too. Setting
``init_seed`` on the base config instead pins one initialization for every seed (only data order
and augmentation then vary).

Boundary extension (Section 4: "Whenever the best performing hyperparameters lie in the boundary of
the searching grid, we always extend the grid to ensure that the final best-performing
hyperparameters fall into the interior of the grid"). Given the mean final test error of each
grid point of one method, :func:`boundary_extension` says which edges the best point lies on and
which new values to add, continuing the grid's 1-5 per decade pattern (..., 1e-4, 5e-4, 1e-3,
5e-3, ...; :func:`next_grid_value`). Which point is best, which edges can be extended and how
seeds are averaged are the summary model's rules (:mod:`scalefree.rundir.summary`), shared with
the tables so the sweep extends toward the very point the tables circle. In short: diverged and
failed runs count as ``DIVERGED_ERROR`` and are never best (an all-diverged method is not
extended); weight decay 0 and single-value axes are not edges; a corner extends both axes (the
new corner point is run too); a point is decided on only once every seed finished.

Everything here is pure: no files are read, so the logic is unit-testable on a fake result table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from scalefree.errors import UsageError
from scalefree.rundir.summary import (
    REL_TOL,
    TIMESCALE_AXIS,
    WEIGHT_DECAY_AXIS,
    DecayAxis,
    PointError,
    extendable_edges,
    mean_when_complete,
    method_label,
    method_settings,
    run_error,
    same_value,
)
from scalefree.rundir.summary import best_point as _best_of
from scalefree.train.config import MAX_SEED, RunConfig, fmt_num

# The paper's grid (Section 4, "Hyperparameter tuning").
PAPER_ETA0S: tuple[float, ...] = (5e-5, 1e-4, 5e-4, 1e-3, 5e-3)
PAPER_WEIGHT_DECAYS: tuple[float, ...] = (0.0, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3)
DEFAULT_METHODS: tuple[str, ...] = ("AdamL2", "AdamW")
# Mantissas of the grid pattern within one decade.
GRID_MANTISSAS: tuple[int, ...] = (1, 5)

# (eta0, weight decay) -> mean final test error over seeds; None (or NaN) where unfinished.
ErrorTable = Mapping[tuple[float, float], "float | None"]


@dataclass(frozen=True)
class Axes:
    """One method's grid: eta0 values x weight-decay values (each sorted ascending, unique)."""

    eta0s: tuple[float, ...]
    weight_decays: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "eta0s", _sorted_unique(self.eta0s))
        object.__setattr__(self, "weight_decays", _sorted_unique(self.weight_decays))

    def points(self) -> list[tuple[float, float]]:
        return [(e, w) for e in self.eta0s for w in self.weight_decays]

    def __len__(self) -> int:
        return len(self.eta0s) * len(self.weight_decays)


@dataclass(frozen=True)
class Sweep:
    """A base config, per-method grid axes, and seeds; expands to RunConfigs.

    Every setting that is not swept (model, dataset, epochs, batch size, loss multiplier, ...)
    comes from ``base``; its ``optim_method``, ``eta0``, ``weight_decay`` and ``seed`` are ignored.
    ``decay_axis`` says which setting the second axis sweeps: the weight decay, or the decay
    timescale in epochs (then every run's weight decay is the base's 0). A method is an optimizer
    name or a method label with switches (``AdamW+CWD``: :func:`~scalefree.rundir.summary.
    method_settings`).
    """

    base: RunConfig
    axes: Mapping[str, Axes]
    seeds: tuple[int, ...] = (0,)
    decay_axis: DecayAxis = WEIGHT_DECAY_AXIS

    def config(self, method: str, eta0: float, decay: float, seed: int) -> RunConfig:
        """The run of one method at (eta0, decay-axis value) with one seed."""
        settings = method_settings(method) | {self.decay_axis.field: decay}
        return self.base.replace(**settings, eta0=eta0, seed=seed)

    def configs(self) -> list[RunConfig]:
        """One RunConfig per (method, eta0, decay value, seed), in that nesting order."""
        return [
            self.config(method, eta0, wd, seed)
            for method, ax in self.axes.items()
            for eta0, wd in ax.points()
            for seed in self.seeds
        ]

    def method_configs(self, method: str, points: Iterable[tuple[float, float]] | None = None):
        """The RunConfigs of one method, grouped by grid point: {(eta0, wd): [config per seed]}."""
        pts = self.axes[method].points() if points is None else points
        return {(e, w): [self.config(method, e, w, s) for s in self.seeds] for e, w in pts}

    def with_axes(self, method: str, axes: Axes) -> Sweep:
        return Sweep(self.base, {**self.axes, method: axes}, self.seeds, self.decay_axis)

    @property
    def label(self) -> str:
        """Short description for messages, e.g. ``CIFAR10 ResNet110 (no BN)``."""
        b = self.base
        notes = ["BN" if b.batch_norm else "no BN"]
        if b.loss_multiplier != 1:
            notes.append(f"loss x{fmt_num(b.loss_multiplier)}")
        return f"{b.dataset} {b.model} ({', '.join(notes)})"


def make_sweep(
    base: RunConfig,
    methods: Sequence[str] = DEFAULT_METHODS,
    eta0s: Sequence[float] = PAPER_ETA0S,
    weight_decays: Sequence[float] = PAPER_WEIGHT_DECAYS,
    seeds: Sequence[int] = (0,),
    decay_axis: DecayAxis = WEIGHT_DECAY_AXIS,
) -> Sweep:
    """A :class:`Sweep` with the same axes for every method; validates with flag-named errors.

    With ``decay_axis=TIMESCALE_AXIS`` the ``weight_decays`` are decay timescales in epochs
    (``--decay-timescale-vals``: positive)."""
    methods = validate_methods(methods)
    eta0s = validate_values("--eta0-vals", eta0s, allow_zero=False)
    timescale = decay_axis is TIMESCALE_AXIS
    flag = "--decay-timescale-vals" if timescale else "--weight-decay-vals"
    weight_decays = validate_values(flag, weight_decays, allow_zero=not timescale)
    seeds = validate_seeds(seeds)
    axes = Axes(eta0s, weight_decays)
    sweep = Sweep(base, {m: axes for m in methods}, seeds, decay_axis)
    if timescale:  # a method without a decay timescale (AdamL2) fails now, naming the flag
        for method in methods:
            sweep.config(method, eta0s[0], weight_decays[0], seeds[0])
    return sweep


# ------------------------------------------------------------------------------------ validation


def validate_methods(methods: Sequence[str], flag: str = "--optim-methods") -> tuple[str, ...]:
    """Canonical method labels (an optimizer name, optionally with switches: ``AdamW+CWD``),
    duplicates dropped (order kept)."""
    from scalefree.optim import OPTIMIZERS

    if not methods:
        raise UsageError(f"{flag} needs at least one optimizer, e.g. {flag} AdamL2 AdamW")
    out: list[str] = []
    for name in methods:
        try:
            settings = method_settings(name)
            settings["optim_method"] = OPTIMIZERS.canonical(settings["optim_method"])
        except (UsageError, ValueError) as exc:
            raise UsageError(f"{flag}: {exc}") from None
        canonical = method_label(settings)
        if canonical not in out:
            out.append(canonical)
    return tuple(out)


def validate_values(flag: str, values: Sequence[float], *, allow_zero: bool) -> tuple[float, ...]:
    """Grid values: at least one, finite, positive (or >= 0); sorted ascending, unique."""
    if not values:
        raise UsageError(f"{flag} needs at least one value")
    for v in values:
        bad = isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
        if bad or v < 0 or (v == 0 and not allow_zero):
            what = "non-negative" if allow_zero else "positive"
            raise UsageError(f"{flag} values must be {what} finite numbers, got {v!r}")
    return _sorted_unique(float(v) for v in values)


def validate_seeds(seeds: Sequence[int], flag: str = "--seeds") -> tuple[int, ...]:
    if not seeds:
        raise UsageError(f"{flag} needs at least one seed")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
            raise UsageError(f"{flag} values must be integers from 0 to 2**64 - 1, got {s!r}")
    return tuple(dict.fromkeys(seeds))


def _sorted_unique(values: Iterable[float]) -> tuple[float, ...]:
    out: list[float] = []
    for v in sorted(float(x) for x in values):
        if not out or not same_value(v, out[-1]):
            out.append(v)
    return tuple(out)


# ---------------------------------------------------------------------------- boundary extension


def next_grid_value(x: float, *, up: bool) -> float:
    """The next value of the 1-5 per decade pattern strictly above (``up``) or below ``x``.

    ``next_grid_value(5e-4, up=True) == 1e-3``, ``next_grid_value(1e-3, up=True) == 5e-3``,
    ``next_grid_value(1e-5, up=False) == 5e-6``. Values off the pattern step to the nearest pattern
    value beyond them (``2e-3`` -> ``5e-3`` up, ``1e-3`` down). The result is built from its
    decimal spelling, so it is the same float a user typing ``5e-3`` gets.
    """
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"grid values to extend must be positive and finite, got {x!r}")
    k = math.floor(math.log10(x))
    candidates = sorted(float(f"{m}e{j}") for j in range(k - 2, k + 3) for m in GRID_MANTISSAS)
    if up:
        return next(c for c in candidates if c > x * (1 + REL_TOL))
    return next(c for c in reversed(candidates) if c < x * (1 - REL_TOL))


@dataclass(frozen=True)
class Extension:
    """New grid values for one method, and the edges that asked for them."""

    eta0s: tuple[float, ...] = ()
    weight_decays: tuple[float, ...] = ()
    edges: tuple[str, ...] = field(default=())
    best: tuple[float, float] | None = None  # (eta0, weight decay) of the best point
    axis: DecayAxis = WEIGHT_DECAY_AXIS  # what ``weight_decays`` are (the sweep's decay axis)

    def __bool__(self) -> bool:
        return bool(self.eta0s or self.weight_decays)

    def apply(self, axes: Axes) -> Axes:
        """The axes with the new values added."""
        return Axes(axes.eta0s + self.eta0s, axes.weight_decays + self.weight_decays)


def best_point(table: ErrorTable) -> tuple[float, float] | None:
    """(eta0, wd) of the best finished point of ``table`` (the summary model's rule); None when
    nothing finished below DIVERGED_ERROR. Every entry is a complete seed mean, so all count alike."""
    points = [PointError(e, w, err, 1) for (e, w), err in table.items() if err is not None]
    best = _best_of(points)
    return None if best is None else (best.eta0, best.weight_decay)


def boundary_extension(
    table: ErrorTable, axes: Axes, axis: DecayAxis = WEIGHT_DECAY_AXIS
) -> Extension:
    """Which edges of ``axes`` the best point of ``table`` lies on, and the values to add.
    ``axis`` is the decay axis the second values are on (a timescale axis extends like weight
    decay, 1-5 per decade, and its smallest value is an edge).

    Returns an empty (falsy) :class:`Extension` when the best point is interior, when nothing
    finished below the divergence error, or when the only edges it touches are not extendable
    (weight decay 0, single-value axes). See the module docstring for the conventions.
    """
    best = best_point(table)
    if best is None:
        return Extension()
    edges = extendable_edges(best, axes.eta0s, axes.weight_decays, axis)

    def beyond(name: str) -> tuple[float, ...]:
        return tuple(next_grid_value(x.value, up=x.up) for x in edges if x.axis == name)

    labels = tuple(x.label for x in edges)
    return Extension(beyond("eta0"), beyond(axis.name), labels, best, axis)


def missing_points(table: ErrorTable, axes: Axes) -> list[tuple[float, float]]:
    """Grid points of ``axes`` without a finished error in ``table`` (extension waits for them)."""
    out = []
    for p in axes.points():
        err = table.get(p)
        if err is None or (isinstance(err, float) and math.isnan(err)):
            out.append(p)
    return out


def new_points(old: Axes, new: Axes) -> list[tuple[float, float]]:
    """Points of ``new`` that are not points of ``old`` (a new row, column, and corner)."""
    have = set(old.points())
    return [p for p in new.points() if p not in have]


def mean_error(results: Sequence[dict | None]) -> float | None:
    """Mean final test error of one grid point's seed runs, from their result.json contents.

    None while any seed is unfinished (the extension waits for every seed); diverged and failed
    runs count as DIVERGED_ERROR (:func:`scalefree.rundir.summary.mean_when_complete`).
    """
    return mean_when_complete([run_error(r) for r in results])


__all__ = [
    "DEFAULT_METHODS",
    "PAPER_ETA0S",
    "PAPER_WEIGHT_DECAYS",
    "Axes",
    "ErrorTable",
    "Extension",
    "Sweep",
    "best_point",
    "boundary_extension",
    "make_sweep",
    "mean_error",
    "missing_points",
    "new_points",
    "next_grid_value",
    "same_value",
    "validate_methods",
    "validate_seeds",
    "validate_values",
]
