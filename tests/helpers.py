"""The one tolerance helper used by every test."""

from __future__ import annotations

import torch


def assert_close(
    actual, expected, *, rtol: float | None = None, atol: float | None = None, msg: str = ""
):
    """The one tolerance helper: dtype-aware defaults (float64 tight, float32 loose)."""
    actual = torch.as_tensor(actual)
    expected = torch.as_tensor(expected, dtype=actual.dtype, device=actual.device)
    if rtol is None or atol is None:
        tight = actual.dtype == torch.float64
        rtol = rtol if rtol is not None else (1e-10 if tight else 1e-5)
        atol = atol if atol is not None else (1e-12 if tight else 1e-6)
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=msg or None)
