"""Chance level: the one definition used by the trainer's notes, the figures and the report.

A classifier that has learned nothing has test error ``1 - 1/num_classes`` (0.9 on CIFAR-10). A
measured error counts as *at chance* when it is at least that minus a margin: 2 percentage points,
or 3 binomial standard deviations of an error rate at chance on ``n_eval`` images when that is
larger (small evaluation sets are noisy: 0.04 on 512 images).
"""

from __future__ import annotations

import math

CHANCE_MARGIN_FLOOR = 0.02


def chance_error(num_classes: int) -> float:
    return 1.0 - 1.0 / num_classes


def chance_margin(num_classes: int, n_eval: int | None) -> float:
    p = chance_error(num_classes)
    sd = math.sqrt(p * (1.0 - p) / n_eval) if n_eval else 0.0
    return max(CHANCE_MARGIN_FLOOR, 3.0 * sd)


def at_chance(test_error: float, num_classes: int, n_eval: int | None) -> bool:
    return test_error >= chance_error(num_classes) - chance_margin(num_classes, n_eval)


__all__ = ["CHANCE_MARGIN_FLOOR", "at_chance", "chance_error", "chance_margin"]
