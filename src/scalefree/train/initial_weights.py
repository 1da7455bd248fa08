"""The stored initial weights of a run: one file per (dataset, model, BN, init seed) under
``<log folder>/initial_weights/``, shared by every run of a sweep (docs/design.md section 2.7)."""

from __future__ import annotations

import errno
from pathlib import Path

import torch
from torch import nn

from scalefree.errors import DiskFull, UsageError
from scalefree.io import atomic_save, refuse_symlink
from scalefree.models import build_model
from scalefree.train.config import RunConfig


def initial_weights_path(config: RunConfig) -> Path:
    bn = "BN" if config.batch_norm else "NoBN"
    name = f"{config.dataset}_{config.model}_{bn}_InitSeed_{config.effective_init_seed}.pt"
    return Path(config.log_folder) / "initial_weights" / name


def build_initial_model(config: RunConfig, num_classes: int, write: bool = True) -> nn.Module:
    """The run's model with the stored initial weights for (dataset, model, BN, init seed).

    The first run to need them creates them (seeded, on the CPU, so identical on every machine) and
    stores them atomically; every later run of a sweep loads the same file.
    """
    path = initial_weights_path(config)
    refuse_symlink(path)  # planted in a shared log folder: neither read through nor written
    if path.exists():
        model = build_model(config.model, num_classes=num_classes, batch_norm=config.batch_norm)
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as exc:  # noqa: BLE001 - any unreadable file: one clear message
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:200]
            raise UsageError(
                f"the stored initial weights {path} cannot be used: it is damaged, belongs to "
                "another model, or holds objects other than tensors (not loaded, nothing run: "
                f"{first}). Delete it; scalefree recreates it from the init seed"
            ) from None
        return model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.effective_init_seed)
        model = build_model(config.model, num_classes=num_classes, batch_norm=config.batch_norm)
    if write:
        try:
            atomic_save(path, lambda f: torch.save(model.state_dict(), f))
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(disk_full_message(exc, path.parent)) from None
            raise UsageError(
                f"cannot write to the log folder {config.log_folder} ({exc.strerror or exc}); "
                "choose a writable --log-folder"
            ) from None
    return model


def disk_full_message(exc: OSError, run_dir: Path) -> str:
    where = exc.filename or run_dir
    return (
        f"the disk is full: writing {where} failed ({exc.strerror or 'no space left on device'}). "
        f"Every file written before is intact and the run directory {run_dir} keeps its last "
        "checkpoint; free space and rerun with --resume"
    )


__all__ = ["build_initial_model", "disk_full_message", "initial_weights_path"]
