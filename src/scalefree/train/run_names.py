"""How a setting shows in a run name: :class:`Suffix` and the number format :func:`fmt_num`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Suffix:
    """How a setting the reference names did not have shows in the run name.

    ``render(value)`` is appended unless the value equals ``omit_at`` - the value recorded here,
    not the field's default, so changing a default can never rename existing run directories
    (a sweep would stop finding its finished runs). ``rank`` orders the suffixes (the order is
    part of every name: pinned by tests/train/test_config_names.py); ``schedulers``, when given,
    limits the suffix to runs with one of those schedulers (a parameter no schedule reads must not
    split one run into two names).
    """

    render: Callable[[Any], str]
    omit_at: Any
    rank: int
    schedulers: tuple[str, ...] | None = None

    def part(self, value: Any, scheduler: str) -> str | None:
        if self.schedulers is not None and scheduler not in self.schedulers:
            return None
        return None if value == self.omit_at else self.render(value)

    @classmethod
    def named(
        cls, name: str, omit_at: Any, rank: int, schedulers: tuple[str, ...] | None = None
    ) -> Suffix:
        """``<name>_<value>``: a number as :func:`fmt_num` prints it, a pair as two joined by
        ``_``, a string as it is (``Eps_1e-07``, ``Betas_0.9_0.99``, ``AMP_bf16``)."""
        return cls(functools.partial(_named_part, name), omit_at, rank, schedulers)

    @classmethod
    def switch(cls, text: str, omit_at: Any, rank: int) -> Suffix:
        """``text`` alone whenever the value is not ``omit_at`` (``CWD``, ``NoAug``)."""
        return cls(functools.partial(_constant_part, text), omit_at, rank)


def _named_part(name: str, value: Any) -> str:
    parts = value if isinstance(value, (tuple, list)) else (value,)
    return "_".join([name, *(v if isinstance(v, str) else fmt_num(v) for v in parts)])


def _constant_part(text: str, value: Any) -> str:
    return text


def fmt_num(x: float | int) -> str:
    """Numbers as the reference's log names print them: 0.0005, 5e-05, 1 (integral floats lose .0)."""
    if isinstance(x, bool):
        return str(int(x))
    if isinstance(x, int):
        return str(x)
    x = float(x)
    if x.is_integer() and abs(x) < 1e16:
        return str(int(x))
    return repr(x)


__all__ = ["Suffix", "fmt_num"]
