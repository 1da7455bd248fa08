"""Checkpoints: atomic, checksummed, with every RNG state, so a resumed run equals an uninterrupted one.

Layout: ``checkpoint.pt`` (latest complete epoch) and ``checkpoint.prev.pt`` (the one before). Each
file is ``MAGIC + sha256(payload) + payload`` with payload a ``torch.save`` blob. A truncated or
corrupted latest checkpoint is detected by its checksum and the previous one is used instead;
if both are bad the caller gets a clear error instead of a silent restart from scratch.

A checkpoint is data, never code: payloads hold only tensors and plain Python values (dicts,
lists, tuples, numbers, strings, None; RNG states are uint8 tensors) and are read with
``torch.load(weights_only=True)``, which refuses any other object instead of constructing it. The
checksum only detects damage (anyone who can write the file can recompute it); ``weights_only`` is
what keeps a forged file from running code. A file that needs more (written by a pre-0.x
scalefree that pickled objects, or forged) is reported as unusable and never executed.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from scalefree.errors import UsageError
from scalefree.io import atomic_write_bytes, open_regular, refuse_symlink
from scalefree.rundir.layout import CHECKPOINT_FILE as LATEST
from scalefree.rundir.layout import PREVIOUS_CHECKPOINT_FILE as PREVIOUS
from scalefree.rundir.layout import has_checkpoint  # noqa: F401 - kept importable here

MAGIC = b"SCALEFREE-CKPT-v1\n"


class CheckpointError(UsageError):
    """No usable checkpoint although one was expected."""


def save_checkpoint(run_dir: str | Path, payload: dict[str, Any]) -> Path:
    run_dir = Path(run_dir)
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    latest = run_dir / LATEST
    refuse_symlink(latest)
    refuse_symlink(run_dir / PREVIOUS)
    if latest.exists():
        os.replace(latest, run_dir / PREVIOUS)  # keep the last good one until the new one is whole
    atomic_write_bytes(latest, MAGIC + hashlib.sha256(data).digest() + data)
    return latest


def _read(path: Path) -> dict[str, Any]:
    with open_regular(path) as f:  # a FIFO planted as a checkpoint must not block the resume
        blob = f.read()
    head = len(MAGIC)
    if not blob.startswith(MAGIC) or len(blob) < head + 32:
        raise ValueError("not a scalefree checkpoint or truncated header")
    digest, data = blob[head : head + 32], blob[head + 32 :]
    if hashlib.sha256(data).digest() != digest:
        raise ValueError("checksum mismatch (truncated or corrupted)")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            "it holds objects other than tensors and plain values, so it was not loaded (written "
            f"by an older scalefree, or tampered with: {first[:200]})"
        ) from None
    _check_payload(payload)
    return payload


REQUIRED = {"epoch": int, "step": int, "wall_time_s": float, "model": dict, "optimizer": dict}


def _check_payload(payload: Any) -> None:
    """Raise ValueError naming what is missing or of the wrong type in a checksummed payload."""
    if not isinstance(payload, dict):
        raise ValueError(f"payload is a {type(payload).__name__}, not a dict")
    for key, kind in REQUIRED.items():
        value = payload.get(key)
        ok = isinstance(value, (int, float) if kind is float else kind)
        if not ok or isinstance(value, bool):
            raise ValueError(f"key {key!r} is missing or not of type {kind.__name__}")
    rng = payload.get("rng")
    if not isinstance(rng, dict) or not all(
        isinstance(rng.get(k), torch.Tensor) for k in ("torch", "data")
    ):
        raise ValueError("key 'rng' is missing or incomplete")


def load_checkpoint(run_dir: str | Path) -> tuple[dict[str, Any], list[str]]:
    """The newest valid checkpoint and a list of warnings about ones that were skipped.

    Raises CheckpointError (a usage error: exit 2, nothing changed) when none is usable.
    """
    run_dir = Path(run_dir)
    warnings: list[str] = []
    for name in (LATEST, PREVIOUS):
        path = run_dir / name
        if not path.exists():
            continue
        try:
            return _read(path), warnings
        except Exception as exc:  # any unreadable file: fall back to the previous one
            warnings.append(f"{path} is unusable ({exc})")
    raise CheckpointError(
        f"no valid checkpoint in {run_dir} ({'; '.join(warnings) or 'none found'}). "
        "Delete the run directory to start this run from scratch, or restore a good checkpoint."
    )


def rng_state(data_generator: torch.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "data": data_generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], data_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    data_generator.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
