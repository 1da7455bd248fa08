"""What ``scalefree diagnose`` diagnoses: a model configuration or a run directory, on its data.

A target is a :class:`~scalefree.train.config.RunConfig` and where its weights come from:
``init`` is the weights a run of that config starts from (the stored initial weights of the log
folder, or the same ones recreated from the init seed; nothing is written), ``final`` a run's last
checkpoint (read with ``weights_only=True``). The batches are the first ``batches`` training
batches the run itself sees in its first epoch (same seed, shuffling, augmentation, batch size)
and the loss is the run's cross-entropy times ``--loss-multiplier`` (under ``--amp`` if set).

The result of one target is a JSON-ready entry::

    {"diagnosis": Diagnosis.to_dict(), "at": "init" | "final", "batches": int,
     "batchsize", "model", "batch_norm", "dataset", "image_size", "seed", "init_seed",
     "epoch", "step",            # of the checkpoint (0 at init)
     "run_dir", "run_name",      # null for a configuration given by flags
     "label", "train_mode", "include_bias_norm", "device", "threads", "wall_time_s",
     "scalefree_version"}

:func:`diagnose_run` writes it to ``<run>/diagnose_<at>.json`` with the figure beside it
(``scalefree.rundir.layout.diagnose_file``).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from scalefree import __version__
from scalefree.data import DataBundle, TrainBatches
from scalefree.errors import UsageError
from scalefree.io import atomic_write_json
from scalefree.models import build_model
from scalefree.rundir import read_config
from scalefree.rundir.layout import DIAGNOSE_AT, diagnose_file
from scalefree.train import checkpoint as ckpt
from scalefree.train.config import RunConfig, fmt_num
from scalefree.train.settings import process_settings

from .core import diagnose

DEFAULT_BATCHES = 8


@dataclass
class DataCache:
    """Loaded datasets by what determines them, so many runs on one dataset load it once."""

    bundles: dict[tuple, DataBundle] = field(default_factory=dict)

    def get(self, config: RunConfig, device: torch.device) -> DataBundle:
        from scalefree.train.run_state import DistContext
        from scalefree.train.trainer import _load_run_data  # the trainer's own data path

        key = (
            config.dataset, config.dataroot, config.validation, config.val_ratio,
            config.synthetic_sizes, config.image_size, str(device),
        )  # fmt: skip
        if key not in self.bundles:
            self.bundles[key] = _load_run_data(config, DistContext(), device)
        return self.bundles[key]


def run_config(run_dir: Path, **overrides: Any) -> RunConfig:
    """The RunConfig of a run directory, its log folder being the run's parent folder (where its
    stored initial weights are), with ``overrides`` (e.g. a dataroot moved since)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise UsageError(f"{run_dir} is not a run directory (no config.json in it)")
    try:
        config = RunConfig.from_dict(read_config(run_dir))
    except Exception as exc:  # noqa: BLE001 - damaged or foreign config.json: one clear line
        raise UsageError(f"{run_dir / 'config.json'} cannot be used ({exc})") from None
    return config.replace(log_folder=str(run_dir.parent), **overrides)


def load_weights(
    config: RunConfig, at: str, num_classes: int, run_dir: Path | None = None
) -> tuple[nn.Module, dict[str, int]]:
    """The model at ``init`` (the run's initial weights) or ``final`` (its last checkpoint),
    and the epoch and step of those weights."""
    from scalefree.train.trainer import build_initial_model

    if at not in DIAGNOSE_AT:
        raise UsageError(f"--at must be one of {', '.join(DIAGNOSE_AT)}, got {at!r}")
    if at == "init":
        return build_initial_model(config, num_classes, write=False), {"epoch": 0, "step": 0}
    if run_dir is None:
        raise UsageError("--at final needs a RUN_DIR (a run's last checkpoint); use --at init")
    if not ckpt.has_checkpoint(run_dir):
        raise UsageError(
            f"{run_dir} has no checkpoint yet (it saves one per finished epoch); use --at init"
        )
    saved, notes = ckpt.load_checkpoint(run_dir)
    model = build_model(config.model, num_classes=num_classes, batch_norm=config.batch_norm)
    try:
        model.load_state_dict(saved["model"])
    except RuntimeError as exc:
        first = (str(exc).strip().splitlines() or ["mismatch"])[0][:200]
        raise ckpt.CheckpointError(
            f"the checkpoint of {run_dir} does not fit its model ({first})"
        ) from None
    return model, {"epoch": saved["epoch"], "step": saved["step"]}


def first_batches(
    data: DataBundle, config: RunConfig, n: int, channels_last: bool = False
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``n`` training batches of the run's first epoch (fewer if the epoch is shorter)."""
    generator = torch.Generator().manual_seed(config.seed)
    loader = TrainBatches(
        data, config.batchsize, generator, augment=config.augment, channels_last=channels_last
    )
    return list(itertools.islice(iter(loader), n))


def label_of(config: RunConfig, at: str, run_dir: Path | None) -> str:
    model = config.model + ("" if config.batch_norm else " NoBN")
    if run_dir is None or at == "init":
        seed = "" if run_dir is None else f" seed {config.effective_init_seed}"
        return f"{model}{seed} ({at})" if run_dir is not None else model
    return (
        f"{model} {config.optim_method} η0={fmt_num(config.eta0)} "
        f"λ={fmt_num(config.weight_decay)} seed {config.seed} ({at})"
    )


def diagnose_config(
    config: RunConfig,
    at: str = "init",
    *,
    run_dir: Path | None = None,
    batches: int = DEFAULT_BATCHES,
    data: DataCache | None = None,
    threads: int | None = None,
    include_bias_norm: bool = False,
    train_mode: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Diagnose one target; returns its JSON-ready entry (module docstring)."""
    from scalefree.train.trainer import amp_context, resolve_channels_last, resolve_device

    if batches < 1:
        raise UsageError(f"--batches must be >= 1, got {batches}")
    start = time.perf_counter()
    device = resolve_device(config)
    with process_settings(seed=config.seed, num_threads=threads):
        bundle = (data or DataCache()).get(config, device)
        model, where = load_weights(config, at, bundle.num_classes, run_dir)
        channels_last = resolve_channels_last(config, device)
        model = model.to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        amp = amp_context(config, device)
        multiplier = config.loss_multiplier

        def loss_fn(m: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            x, y = batch
            with amp():
                return F.cross_entropy(m(x).float(), y) * multiplier

        d = diagnose(
            model,
            loss_fn,
            first_batches(bundle, config, batches, channels_last),
            eps=config.eps,
            include_bias_norm=include_bias_norm,
            train_mode=train_mode,
            progress=progress,
        )
        used_threads = torch.get_num_threads()
    return {
        "diagnosis": d.to_dict(),
        "at": at,
        "batches": d.num_batches,
        "batchsize": config.batchsize,
        "model": config.model,
        "batch_norm": config.batch_norm,
        "dataset": config.dataset,
        "image_size": config.image_size or 32,
        "seed": config.seed,
        "init_seed": config.effective_init_seed,
        **where,
        "run_dir": None if run_dir is None else str(run_dir),
        "run_name": None if run_dir is None else Path(run_dir).name,
        "label": label_of(config, at, run_dir),
        "train_mode": train_mode,
        "include_bias_norm": include_bias_norm,
        "device": str(device),
        "threads": used_threads,
        "wall_time_s": time.perf_counter() - start,
        "scalefree_version": __version__,
    }


def write_entry(json_path: Path, entry: dict[str, Any], figure: bool = True) -> list[Path]:
    """Write an entry's JSON (atomically) and, with ``figure``, its PNG beside it."""
    atomic_write_json(json_path, entry)
    written = [json_path]
    if figure:
        written.append(draw([entry], json_path.with_suffix(".png")))
    return written


def draw(entries: list[dict[str, Any]], path: Path) -> Path:
    from scalefree.plots.diagnose import depth_profile, distinct

    depth_profile(distinct(entries), path)
    return path


def diagnose_run(
    run_dir: Path,
    at: str,
    batches: int = DEFAULT_BATCHES,
    *,
    data: DataCache | None = None,
    threads: int | None = None,
    overrides: dict[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Diagnose a run directory at ``init`` or ``final``, write ``<run>/diagnose_<at>.json`` and
    ``.png`` and return the JSON's content. ``options``: those of :func:`diagnose_config`."""
    run_dir = Path(run_dir)
    config = run_config(run_dir, **(overrides or {}))
    entry = diagnose_config(
        config, at, run_dir=run_dir, batches=batches, data=data, threads=threads, **options
    )
    write_entry(diagnose_file(run_dir, at), entry)
    return entry
