"""The summary model: from finished runs to one error per grid point, the best point, its edges.

Two readers decide "which setting is best" from the same run directories: the sweep, to extend
the grid while the best point lies on its edge (:mod:`scalefree.sweep.grid`,
:mod:`scalefree.sweep.runner`), and the tables (:mod:`scalefree.plots.tables`, and through them
the heatmaps' best circle, the report and the verdict). They must never disagree, so the rules
live here, once:

1. **A run's error** (:func:`run_error`): the final ``test_error`` of a completed run; diverged and
   failed runs are charged ``DIVERGED_ERROR`` (1.1, the reference scripts' value, worse than any
   real error), so they enter a mean and can never be best; an unfinished run has no error (None).
2. **A grid point's error** is the mean over its seeds (:func:`seed_mean`). Unfinished seeds are
   read in one of two named ways, chosen by what the reader does with the number:

   * :func:`mean_of_finished` (tables, figures): the mean of the seeds that finished; the
     tables print how many finished and how many are still running next to it, so a
     half-finished sweep is shown as such and nothing is hidden;
   * :func:`mean_when_complete` (boundary extension): None until *every* seed of the point
     finished. Extending the grid is an action (new runs are launched and stay on disk); a seed
     still running could change which point wins, so the sweep waits for it instead of acting
     on part of the evidence.

   Once every seed finished, the two are the same number.
3. **The best point** (:func:`best_point`): the lowest mean below ``DIVERGED_ERROR`` (NaN never
   wins). Ties go to the point with more finished seeds (more evidence), then to the smaller
   eta0, then to the smaller weight decay. Both earlier copies of this rule broke ties on eta0
   first and weight decay second, so keeping that order changes no table, heatmap or extension
   already produced; it is also the cautious choice: among equally good settings the smaller
   step size is the one farther from divergence, and the smaller weight decay the one that
   regularizes less. (The sweep only asks about complete points, whose seed counts are equal,
   so the seed-count tie-break only ever matters in the tables.)
4. **Extendable edges** (:func:`extendable_edges`): the best point's eta0 or weight decay equals
   the largest or smallest value of its axis, where the paper extends the grid (Section 4). An
   axis with a single value is the user's fixed choice, not a searched range, and has no edge; a
   smallest value of 0 is not an edge (there is nothing below 0 to try).
5. **The decay axis of a run** (:func:`decay_axis`): a grid's second axis is the weight decay
   lambda, or, for runs that set ``decay_timescale`` (Wang & Aitchison 2024: lambda chosen so the
   decay's EMA timescale is that many epochs), the timescale in epochs. Rules 3 and 4 read the
   axis's value the same way (the smallest timescale is an edge, being > 0). **A run's method**
   (:func:`method_label`) is its optimizer plus the switches that change its rule (``+CWD`` for
   cautious weight decay, ``+Caution`` for update masking), so such runs get their own grid,
   row and colour instead of being averaged into the plain optimizer's.

Everything here is pure: no files are read, so the rules are unit-testable on made-up numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from scalefree.rundir.layout import DIVERGED_ERROR

# Values closer than this (relatively) are the same grid value: 5e-4 typed and 5e-4 computed.
REL_TOL = 1e-9


def same_value(a: float, b: float) -> bool:
    """Equal up to float noise (5e-4 typed and 5e-4 computed are one grid value)."""
    return a == b or abs(a - b) <= REL_TOL * max(abs(a), abs(b))


# ------------------------------------------------------------------------------------ decay axis


@dataclass(frozen=True)
class DecayAxis:
    """The second axis of a grid (rule 5): which RunConfig field it sweeps and how it is named.

    ``name`` is the axis in edges and messages ("weight decay"), ``label`` the heatmap's axis
    label, ``column`` the tables' header, ``symbol`` the letter in "best (eta0=..., λ=...)"."""

    field: str
    name: str
    label: str
    column: str
    symbol: str


WEIGHT_DECAY_AXIS = DecayAxis("weight_decay", "weight decay", "Weight decay λ", "weight decay", "λ")
TIMESCALE_AXIS = DecayAxis(
    "decay_timescale",
    "decay timescale",
    "Decay timescale (epochs)",
    "decay timescale (epochs)",
    "τ",
)
DECAY_AXES: dict[str, DecayAxis] = {a.field: a for a in (WEIGHT_DECAY_AXIS, TIMESCALE_AXIS)}
# Switches of the optimizer's rule that make a run another method (rule 5), with their tag.
METHOD_SWITCHES: tuple[tuple[str, str], ...] = (("cautious_decay", "CWD"), ("caution", "Caution"))


def decay_axis(config: Mapping[str, Any]) -> DecayAxis:
    """The decay axis of a run from its config (rule 5): the timescale when it set one."""
    return TIMESCALE_AXIS if config.get("decay_timescale") is not None else WEIGHT_DECAY_AXIS


def decay_value(config: Mapping[str, Any]) -> float:
    """The run's value on its decay axis: lambda, or the timescale in epochs."""
    return float(config.get(decay_axis(config).field) or 0.0)


def method_label(config: Mapping[str, Any]) -> str:
    """The method a run belongs to (rule 5): ``AdamW``, ``AdamW+CWD``, ``AdamW+Caution``."""
    tags = [tag for key, tag in METHOD_SWITCHES if config.get(key)]
    return "+".join([str(config.get("optim_method")), *tags])


def method_settings(label: str) -> dict[str, Any]:
    """The RunConfig settings of a method label (the inverse of :func:`method_label`):
    ``AdamW+CWD`` -> ``{"optim_method": "AdamW", "cautious_decay": True}``. The optimizer name
    is returned as given (the registry canonicalizes it); an unknown tag is a ValueError naming
    the known ones."""
    name, *tags = label.split("+")
    out: dict[str, Any] = {"optim_method": name}
    by_tag = {tag.lower(): key for key, tag in METHOD_SWITCHES}
    for tag in tags:
        if tag.lower() not in by_tag:
            known = ", ".join(f"+{t}" for _, t in METHOD_SWITCHES)
            raise ValueError(f"unknown method tag +{tag} in {label!r} (known: {known})")
        out[by_tag[tag.lower()]] = True
    return out


# ------------------------------------------------------------------------------------ errors


def run_error(result: Mapping[str, Any] | None) -> float | None:
    """The error one run contributes to its grid point (rule 1): None while it has no result."""
    if result is None:
        return None
    if result.get("status") != "completed":
        return DIVERGED_ERROR
    return float(result["test_error"])


def seed_mean(errors: Sequence[float]) -> float:
    """Mean of the seeds' errors; NaN when there are none (no number is better than a made-up 0)."""
    return float(np.mean(np.asarray(errors, dtype=float))) if len(errors) else math.nan


def seed_std(errors: Sequence[float]) -> float:
    """Sample standard deviation (ddof = 1); NaN below two seeds, since one run says nothing
    about seed variance (0 would claim it is exact)."""
    return float(np.std(np.asarray(errors, dtype=float), ddof=1)) if len(errors) > 1 else math.nan


def mean_of_finished(errors: Iterable[float | None]) -> float:
    """What the tables show (rule 2): the mean over the seeds that finished, NaN if none did."""
    return seed_mean([e for e in errors if e is not None])


def mean_when_complete(errors: Sequence[float | None]) -> float | None:
    """What the boundary extension decides on (rule 2): None until every seed finished."""
    if not errors or any(e is None for e in errors):
        return None
    return seed_mean(errors)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ best point


class GridPoint(Protocol):
    """A grid point as the rules see it (the tables' Cell and :class:`PointError` both are one)."""

    @property
    def eta0(self) -> float: ...

    @property
    def weight_decay(self) -> float: ...

    @property
    def mean(self) -> float: ...

    @property
    def n(self) -> int: ...


P = TypeVar("P", bound=GridPoint)


@dataclass(frozen=True)
class PointError:
    """One grid point's seed mean and how many seeds are behind it."""

    eta0: float
    weight_decay: float
    mean: float
    n: int


def below_divergence(error: float) -> bool:
    """A real error: finite and better than the charge for a diverged run (rules 1 and 3)."""
    return math.isfinite(error) and error < DIVERGED_ERROR


def can_be_best(point: GridPoint) -> bool:
    """Finished, finite, and better than a diverged run (rule 3)."""
    return point.n > 0 and below_divergence(point.mean)


def best_point(points: Iterable[P]) -> P | None:
    """The best of ``points`` by rule 3; None when none finished below DIVERGED_ERROR."""
    ok = [p for p in points if can_be_best(p)]
    return min(ok, key=lambda p: (p.mean, -p.n, p.eta0, p.weight_decay), default=None)


# ------------------------------------------------------------------------------------ edges


@dataclass(frozen=True)
class Edge:
    """One end of a grid axis on which the best point lies (rule 4)."""

    axis: str  # "eta0" or "weight decay"
    up: bool  # the largest value (extend upwards) or the smallest (downwards)
    value: float  # the axis's value at that end

    @property
    def label(self) -> str:
        return f"{'largest' if self.up else 'smallest'} {self.axis}"


def _axis_edge(axis: str, value: float, values: Sequence[float]) -> tuple[Edge, ...]:
    # values > 0 throughout on a timescale axis, so its smallest value is an edge (rule 5)
    if len(values) < 2:  # a fixed value, not a searched range
        return ()
    top, bottom = max(values), min(values)
    if same_value(value, top):
        return (Edge(axis, True, top),)
    if same_value(value, bottom) and bottom > 0:  # nothing below 0 to try
        return (Edge(axis, False, bottom),)
    return ()


def extendable_edges(
    point: tuple[float, float],
    eta0s: Sequence[float],
    weight_decays: Sequence[float],
    axis: DecayAxis = WEIGHT_DECAY_AXIS,
) -> tuple[Edge, ...]:
    """The edges (eta0's first, then the decay axis's) of the grid ``eta0s`` x ``weight_decays``
    on which ``point`` = (eta0, decay value) lies; empty when it is interior (rule 4). The
    second axis is ``axis`` (weight decay, or the decay timescale: rule 5)."""
    eta0, wd = point
    return _axis_edge("eta0", eta0, eta0s) + _axis_edge(axis.name, wd, weight_decays)


__all__ = [
    "DECAY_AXES",
    "METHOD_SWITCHES",
    "TIMESCALE_AXIS",
    "WEIGHT_DECAY_AXIS",
    "DecayAxis",
    "decay_axis",
    "decay_value",
    "method_label",
    "method_settings",
    "DIVERGED_ERROR",
    "REL_TOL",
    "Edge",
    "GridPoint",
    "PointError",
    "below_divergence",
    "best_point",
    "can_be_best",
    "extendable_edges",
    "mean_of_finished",
    "mean_when_complete",
    "run_error",
    "same_value",
    "seed_mean",
    "seed_std",
]
