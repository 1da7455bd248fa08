"""The result of :func:`scalefree.diagnose.diagnose` (definitions: :mod:`scalefree.diagnose.core`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from scalefree.errors import UsageError

QUANTILES = (0.25, 0.5, 0.75)


class DiagnoseError(UsageError):
    """Input :func:`diagnose` cannot use (no batches, a non-scalar loss, no gradient at all)."""


@dataclass(frozen=True)
class TensorRow:
    """One analyzed parameter tensor."""

    name: str
    shape: tuple[int, ...]
    numel: int
    median_sqrt_v: float | None  # over coordinates with v_hat > 0; None if every one is 0
    rms_grad: float  # sqrt(mean v_hat) over all coordinates
    rms_weight: float
    zero_coords: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "numel": self.numel,
            "median_sqrt_v": self.median_sqrt_v,
            "rms_grad": self.rms_grad,
            "rms_weight": self.rms_weight,
            "zero_coords": self.zero_coords,
        }


@dataclass(frozen=True)
class Diagnosis:
    """What :func:`diagnose` found; ``to_dict()`` is JSON-ready, ``reading()`` says it in words."""

    per_tensor: tuple[TensorRow, ...]
    spread: float | None  # None when fewer than one coordinate has v_hat > 0
    layer_spread: float | None  # None without any tensor median
    spread_eps: float
    eps: float
    num_batches: int
    num_coords: int
    zero_coords: int
    quantiles_sqrt_v: dict[str, float | None]  # q25, q50, q75 of sqrt(v_hat) (v_hat > 0)
    excluded: tuple[str, ...] = field(default=())  # parameters left out (bias/norm, frozen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "spread": self.spread,
            "layer_spread": self.layer_spread,
            "spread_eps": self.spread_eps,
            "eps": self.eps,
            "num_batches": self.num_batches,
            "num_coords": self.num_coords,
            "zero_coords": self.zero_coords,
            "quantiles_sqrt_v": dict(self.quantiles_sqrt_v),
            "per_tensor": [r.to_dict() for r in self.per_tensor],
            "excluded": list(self.excluded),
            "reading": self.reading(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Diagnosis:
        rows = tuple(
            TensorRow(**{**r, "shape": tuple(r["shape"])}) for r in d.get("per_tensor", [])
        )
        keys = ("spread", "layer_spread", "spread_eps", "eps", "num_batches", "num_coords")
        return cls(
            per_tensor=rows,
            **{k: d.get(k) for k in keys},
            zero_coords=d.get("zero_coords", 0),
            quantiles_sqrt_v=dict(d.get("quantiles_sqrt_v", {})),
            excluded=tuple(d.get("excluded", ())),
        )

    def reading(self) -> str:
        """One paragraph in plain language."""
        if self.spread is None:
            return "Every analyzed gradient coordinate was zero, so nothing can be said."
        tensors = [r for r in self.per_tensor if r.median_sqrt_v is not None]
        lo = min(tensors, key=lambda r: r.median_sqrt_v)  # type: ignore[arg-type,return-value]
        hi = max(tensors, key=lambda r: r.median_sqrt_v)  # type: ignore[arg-type,return-value]
        text = (
            f"Over {self.num_batches} batch(es), the root mean squared gradient sqrt(v_hat) of the "
            f"middle half of the {self.num_coords - self.zero_coords:,} coordinates spans "
            f"{self.spread:.2f} octaves (a factor {2**self.spread:.3g}). AdamL2 divides the decay "
            f"by sqrt(v_hat), so at eps = 0 it decays the quarter of coordinates with the "
            f"smallest gradients at least {2**self.spread:.3g} times as strongly as the quarter "
            f"with the largest; AdamW decays all alike."
        )
        if self.layer_spread is not None and len(tensors) > 1:
            text += (
                f" Between tensors the median differs by {self.layer_spread:.2f} octaves "
                f"(a factor {2**self.layer_spread:.3g}): from {lo.median_sqrt_v:.3g} in "
                f"{lo.name} to {hi.median_sqrt_v:.3g} in {hi.name}."
            )
        if self.zero_coords:
            text += (
                f" {self.zero_coords:,} coordinate(s) had a zero gradient in every batch and are "
                "left out of these numbers."
            )
        return text

    def table(self) -> str:
        """The per-tensor rows as aligned text (what the CLI prints)."""
        head = ("parameter", "shape", "numel", "median sqrt(v)", "rms grad", "rms weight", "zeros")
        rows = [head] + [
            (
                r.name,
                "x".join(map(str, r.shape)) or "()",
                str(r.numel),
                "-" if r.median_sqrt_v is None else f"{r.median_sqrt_v:.3e}",
                f"{r.rms_grad:.3e}",
                f"{r.rms_weight:.3e}",
                str(r.zero_coords),
            )
            for r in self.per_tensor
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        lines = [
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
            )
            for row in rows
        ]
        return "\n".join(lines)


def quantiles(x: torch.Tensor, qs: Sequence[float] = QUANTILES) -> list[float]:
    """Linearly interpolated quantiles of a 1-D tensor of any size (``torch.quantile``'s default
    rule; that function refuses inputs above 2^24 elements, so this one sorts instead)."""
    n = x.numel()
    if n == 0:
        raise ValueError("quantiles of an empty tensor")
    s = torch.sort(x.reshape(-1).to(torch.float64)).values
    out = []
    for q in qs:
        pos = q * (n - 1)
        lo = int(math.floor(pos))
        hi = min(lo + 1, n - 1)
        frac = pos - lo
        out.append(float(s[lo] + (s[hi] - s[lo]) * frac))
    return out
