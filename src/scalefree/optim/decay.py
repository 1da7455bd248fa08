"""The decay conventions (how lambda becomes the decay strength s of a step) and the s checks.

One convention is one ``DecayConvention``: its formula for s, the same formula divided by lr_t
(written without dividing by lr_t, which may be 0), and the words of its errors. Every path of
the family (``scalefree.optim.functional``) and the trainer read s from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from scalefree.optim import _kernels

Scalar = float | Tensor


@dataclass(frozen=True)
class DecayConvention:
    """How lambda becomes the decay strength s of a step: the one place each convention's formula
    is written. ``strength`` is s; ``per_lr`` is s / lr_t written without dividing by lr_t (which
    may be 0): the weight_decay torch's AdamW kernel multiplies by lr_t. Both take
    (lambda, lr_t, alpha). ``needs_alpha``: s divides by alpha, so a decaying group must be
    built with a positive lr. ``formula`` and ``hint`` word the errors."""

    name: str
    strength: Callable[[float, Scalar, float], Scalar]
    per_lr: Callable[[float, Scalar, float], Scalar]
    needs_alpha: bool
    formula: str
    hint: str


CONVENTIONS: dict[str, DecayConvention] = {
    c.name: c
    for c in (
        DecayConvention(
            "schedule",
            strength=lambda lam, lr, alpha: lam * lr / alpha,
            per_lr=lambda lam, lr, alpha: lam / alpha,
            needs_alpha=True,
            formula="weight_decay * lr / alpha",
            hint="; note 'schedule' is the paper's convention (lambda is the decay per step at the "
            "initial lr), torch's is decay_convention='lr'",
        ),
        DecayConvention(
            "lr",
            strength=lambda lam, lr, alpha: lam * lr,
            per_lr=lambda lam, lr, alpha: lam,
            needs_alpha=False,
            formula="weight_decay * lr",
            hint="; with torch's convention 'lr', weight_decay is per unit of lr",
        ),
        # AdamC (Defazio 2025): the decay falls with lr_t^2, so that at the end of a decaying
        # schedule the steady-state weight norm (and the gradient norm) does not blow up. At
        # lr_t = alpha it equals torch's "lr" convention, so lambda keeps torch's meaning there.
        DecayConvention(
            "corrected",
            strength=lambda lam, lr, alpha: lam * lr * lr / alpha,
            per_lr=lambda lam, lr, alpha: lam * lr / alpha,
            needs_alpha=True,
            formula="weight_decay * lr^2 / alpha",
            hint="; with 'corrected' (AdamC) s = weight_decay * lr_t^2 / alpha, i.e. torch's "
            "weight_decay * lr_t at the initial lr, scaled by lr_t / alpha",
        ),
    )
}
DECAY_CONVENTIONS = tuple(CONVENTIONS)
PROX_NORMS = ("group", "tensor")
CAUTION_FLOOR = _kernels.CAUTION_FLOOR  # C-AdamW: the floor of mean(phi) (Liang et al. 2024)
DEFAULT_CONVENTION = "lr"  # torch.optim.AdamW's; the paper's "schedule" is opt-in


def expected(choices: Iterable[str]) -> str:
    return " or ".join(repr(c) for c in choices)


def check_choices(convention: str, prox_norm: str) -> None:
    """The two string options of a group: a ValueError naming the valid values."""
    if convention not in DECAY_CONVENTIONS:
        raise ValueError(
            f"Invalid decay_convention: {convention!r} (expected {expected(DECAY_CONVENTIONS)})"
        )
    if prox_norm not in PROX_NORMS:
        raise ValueError(f"Invalid prox_norm: {prox_norm!r} (expected {expected(PROX_NORMS)})")


def decay_per_lr(group: dict[str, Any]) -> Scalar:
    """s / lr_t of this group in its convention (0 without decay, also when alpha = 0)."""
    lam = group["weight_decay"]
    if not lam:
        return 0.0
    return CONVENTIONS[group["decay_convention"]].per_lr(lam, group["lr"], group["alpha"])


def decay_strength(group: dict[str, Any]) -> Scalar:
    """s for this step, in the group's convention (see ``CONVENTIONS``)."""
    if group["weight_decay"] == 0:
        return 0.0  # also for alpha = 0 (a group built with lr = 0 and no decay)
    conv = CONVENTIONS[group["decay_convention"]]
    return conv.strength(group["weight_decay"], group["lr"], group["alpha"])


def check_alpha(group: dict[str, Any]) -> None:
    """A convention that divides by alpha needs a group built with a positive lr."""
    conv = group["decay_convention"]
    if CONVENTIONS[conv].needs_alpha and not group["alpha"] > 0:
        formula = CONVENTIONS[conv].formula.replace(" lr ", " lr_t ")
        raise ValueError(
            f"decay_convention={conv!r} needs a positive lr when the group is built "
            f"(s = {formula}, alpha = {group['alpha']}); build it with "
            "the initial lr, or use decay_convention='lr'"
        )


def check_strengths(name: str, groups: list[dict[str, Any]], limit: float) -> None:
    """Raise before anything changes when a step of optimizer ``name`` would take a decay
    strength s >= ``limit`` in one of its ``groups`` (for (1 - s) x: flip or zero the weights)."""
    for i, group in enumerate(groups):
        if group["weight_decay"] == 0:
            continue
        if isinstance(group["lr"], Tensor) and group["lr"].device.type != "cpu":
            continue  # would sync the device every step (and break CUDA graphs)
        s = float(decay_strength(group))
        if s >= limit:
            conv = CONVENTIONS[group["decay_convention"]]
            raise ValueError(
                f"{name}: decay strength s = {conv.formula} = {s:.6g} >= "
                f"{limit:g} in param group {i} (weight_decay={group['weight_decay']}, "
                f"lr={float(group['lr']):.6g}, alpha={group['alpha']:.6g}, "
                f"decay_convention={conv.name!r}); a step would flip or zero the weights, so "
                "none was taken. Lower weight_decay or lr" + conv.hint
            )
