"""Hostile files for the reliability tests: a checkpoint or weights file that runs a command when
unpickled, with a valid SHA-256 header, exactly what an attacker who can write the run directory
could produce."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch

from scalefree.train.checkpoint import MAGIC


class RunsCommand:
    """Unpickling this calls os.system(command) (what weights_only=False would do)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def evil_blob(marker: Path) -> bytes:
    """A torch.save blob holding a plausible payload plus an object that touches ``marker``."""
    buf = io.BytesIO()
    payload = {"epoch": 1, "step": 1, "wall_time_s": 0.0, "model": {}, "optimizer": {}}
    torch.save(payload | {"rng": RunsCommand(f"touch {marker}")}, buf)
    return buf.getvalue()


def forge_checkpoint(path: Path, marker: Path) -> None:
    """Write a forged checkpoint: scalefree's header with a correct checksum over an evil payload."""
    data = evil_blob(marker)
    path.write_bytes(MAGIC + hashlib.sha256(data).digest() + data)


def forge_weights(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(evil_blob(marker))


def assert_forgery_is_live(tmp_path: Path) -> None:
    """The forged payload really runs its command when loaded the unsafe way (so a test that
    finds no marker shows the loader refused it, not that the forgery was a dud)."""
    probe = tmp_path / "probe-marker"
    torch.load(io.BytesIO(evil_blob(probe)), weights_only=False)
    assert probe.exists()
    probe.unlink()
