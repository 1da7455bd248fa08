"""Do the results say anything? Chance level and noise, for the notes on figures and reports.

A short or broken run (a deep net without batch norm after one epoch, too large a step size)
ends at chance, and a grid of such runs still has a "best" cell and colour differences of a few
tenths of a point. Figures must not dress that up as a result. Definitions used everywhere:

* chance error = 1 - 1/num_classes (0.9 on CIFAR-10, 0.99 on CIFAR-100);
* a test error is *at chance* when it is at least chance - margin, with
  margin = max(2 points, 3 binomial standard deviations of an error rate at chance on the
  evaluation set) (:mod:`scalefree.chance`): on CIFAR-10's 10,000 test images that is 0.88;
* differences are *within noise* when the spread (max - min) of the results is below
  noise = max(0.5 points, 2 sqrt(2 p (1 - p) / n), the largest std over seeds), i.e. two standard
  deviations of the difference of two independent error rates p measured on n images.

Diverged and failed runs (charged 1.1 in tables) are not results of training and are left out;
they are shown separately in every figure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scalefree.chance import chance_error, chance_margin
from scalefree.rundir import RunRecord
from scalefree.rundir.summary import below_divergence

from .tables import GroupSummary

NOISE_FLOOR = 0.005
# Evaluation-set sizes for runs that did not record theirs (config.json env.eval_size).
DEFAULT_EVAL_SIZE = {"CIFAR10": 10_000, "CIFAR100": 10_000, "synthetic": 512}


def num_classes(dataset: str) -> int | None:
    """Classes of a registered dataset; None for one this version does not know."""
    from scalefree.data import dataset_num_classes

    try:
        return dataset_num_classes(dataset)
    except Exception:  # noqa: BLE001 - an unknown dataset just gets no chance judgement
        return None


def eval_size(runs: Iterable[RunRecord], dataset: str) -> int | None:
    """Images behind each test error: recorded by the trainer, else the dataset's test set."""
    for r in runs:
        n = (r.config.get("env") or {}).get("eval_size")
        if isinstance(n, int) and n > 0:
            return n
    return DEFAULT_EVAL_SIZE.get(dataset)


def binomial_std(p: float, n: int | None) -> float:
    """Standard deviation of an error rate p measured on n images (0 when n is unknown)."""
    if not n:
        return 0.0
    p = min(max(p, 0.0), 1.0)
    return math.sqrt(p * (1.0 - p) / n)


@dataclass(frozen=True)
class Verdict:
    """Whether a set of test errors rises above chance and above noise."""

    n_results: int
    chance_error: float | None  # None: unknown number of classes
    margin: float
    spread: float  # max - min of the results (NaN with none)
    noise: float
    at_chance: bool  # every result within `margin` of chance (or above it)
    within_noise: bool  # at least two results, all within `noise` of each other

    @property
    def meaningful(self) -> bool:
        return not (self.at_chance or self.within_noise)

    @property
    def chance_threshold(self) -> float:
        return math.nan if self.chance_error is None else self.chance_error - self.margin

    def note(self, what: str = "results") -> str | None:
        """One sentence for the figure and the report; None when the results say something."""
        if self.at_chance:
            k = round(1.0 / (1.0 - self.chance_error))
            return (
                f"All {what} are at chance (test error ≥ {self.chance_threshold:.2f}; chance = "
                f"{self.chance_error:.2f} with {k} classes): nothing has been learned yet, so the "
                "differences between them are noise. Train longer or check the setup."
            )
        if self.within_noise:
            return (
                f"All {what} lie within {100 * self.spread:.2f} percentage points of each other, "
                f"below the noise level (≈{100 * self.noise:.1f} points): no setting is "
                "distinguishably better."
            )
        return None


def judge(
    errors: Sequence[float],
    *,
    classes: int | None,
    n_eval: int | None = None,
    seed_std: float = math.nan,
) -> Verdict:
    """The verdict on test errors (fractions; diverged 1.1 and NaN are ignored)."""
    vals = [float(e) for e in errors if below_divergence(e)]
    known = bool(classes and classes >= 2)
    chance = chance_error(classes) if known else None
    margin = chance_margin(classes, n_eval) if known else math.nan
    if not vals:
        return Verdict(0, chance, margin, math.nan, NOISE_FLOOR, False, False)
    spread = max(vals) - min(vals)
    p = sum(vals) / len(vals)
    noise = max(NOISE_FLOOR, 2.0 * math.sqrt(2.0) * binomial_std(p, n_eval))
    if math.isfinite(seed_std):
        noise = max(noise, seed_std)
    at_chance = chance is not None and min(vals) >= chance - margin
    within_noise = len(vals) > 1 and spread < noise
    return Verdict(len(vals), chance, margin, spread, noise, at_chance, within_noise)


def judge_group(summary: GroupSummary, methods: Sequence[str] | None = None) -> Verdict:
    """The verdict on every grid cell of ``summary`` (or of ``methods``) where no seed diverged:
    the cell means, with the largest std over seeds as a noise estimate."""
    cells = [
        c
        for m in (methods or summary.methods)
        for c in summary.grids[m].cells.values()
        if c.n and not (c.n_diverged or c.n_failed)
    ]
    stds = [c.std for c in cells if math.isfinite(c.std)]
    return judge(
        [c.mean for c in cells],
        classes=num_classes(summary.key.dataset),
        n_eval=eval_size(summary.runs, summary.key.dataset),
        seed_std=max(stds) if stds else math.nan,
    )


__all__ = ["Verdict", "binomial_std", "eval_size", "judge", "judge_group", "num_classes"]
