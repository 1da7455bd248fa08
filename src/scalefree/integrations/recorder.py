"""Any training loop's run recorded as a scalefree run directory: :class:`Recorder`, used in a
plain torch loop (``with recorder.step(): optimizer.step()``) and by the Hugging Face and
Lightning callbacks, which are thin adapters over it.

The directory holds what ``scalefree plot histogram`` and ``scalefree report`` read:

* ``config.json``: the keys the readers need (``optim_method``: the optimizer's class name,
  ``eta0``: its first group's alpha, ``weight_decay``, ``model``: the model's class name,
  ``batch_norm``, ``dataset``), with ``source`` naming the trainer and ``run_name``;
* ``stats/epoch_EEEE.npz``: the update statistics of :class:`~scalefree.train.stats.
  UpdateStatistics`, the recorder of ``scalefree train --store-stats``, with the optimizer the
  trainer built;
* ``diagnose_init.json`` / ``diagnose_final.json`` (and ``diagnose_step_NNNNNNN.json`` at other
  chosen steps): :func:`scalefree.diagnose.diagnose` at those points, when asked for;
* ``result.json`` at the end: status ``completed``; ``test_error`` is the error the caller
  gives (the callbacks: a logged metric they are told, else 1 - the last accuracy the trainer
  logged; ``test_error_of`` says which). Without one it is NaN: the statistics are still
  there (:func:`~scalefree.train.stats.load_stats`), but the tables and ``plot histogram``, which
  draw each method's best setting, have no error to rank the run by.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scalefree import __version__
from scalefree.io import atomic_write_json
from scalefree.optim.groups import is_norm_module
from scalefree.rundir import write as rundir_write
from scalefree.rundir.layout import CONFIG_FILE, diagnose_file
from scalefree.train.stats import UpdateStatistics, alpha_of

LossFn = Callable[[nn.Module, Any], torch.Tensor]


def optimizer_name(optimizer: torch.optim.Optimizer) -> str:
    """The registry's name for scalefree's and torch's optimizers, else the class name."""
    from scalefree.optim.registry import OPTIMIZERS

    name = type(optimizer).__name__
    return OPTIMIZERS.canonical(name) if name in OPTIMIZERS else name


def run_config(
    model: nn.Module, optimizer: torch.optim.Optimizer, source: str, dataset: str, name: str
) -> dict[str, Any]:
    group = optimizer.param_groups[0]
    return {
        "optim_method": optimizer_name(optimizer),
        "eta0": float(next(iter(alpha_of(optimizer).values()), group["lr"])),
        "weight_decay": float(group.get("weight_decay", 0.0)),
        "model": type(model).__name__,
        "batch_norm": any(is_norm_module(m) for m in model.modules()),
        "dataset": dataset,
        "source": source,
        "run_name": name,
        "scalefree_version": __version__,
    }


class Recorder:
    """Update statistics (and, at chosen steps, diagnose numbers) of a run any loop drives.

    In a plain torch loop::

        recorder = Recorder("runs/my_run", model, optimizer, interval=10)
        for epoch in range(1, epochs + 1):
            for x, y in batches:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                with recorder.step():          # or recorder.before_step() / .after_step()
                    optimizer.step()
            recorder.end_epoch(epoch)
        recorder.finish(test_error, "my metric")

    Args:
        out_dir: the run directory to write.
        model, optimizer: the trainer's (an optimizer wrapper, e.g. accelerate's, is unwrapped
            through its ``optimizer`` attribute).
        interval: record every ``interval``-th optimizer step of an epoch (0, k, 2k, ...).
        source: the trainer's name, kept in config.json.
        dataset: a name for the data, kept in config.json (the plots group runs by it).
        diagnose_at: where to run :func:`scalefree.diagnose.diagnose`: ``"init"`` (before the
            first step), ``"final"`` (at the end) and global optimizer step numbers.
        diagnose_batches: a callable returning the batches to diagnose on (consumed once per
            point), and ``loss_fn(model, batch)`` the loss of one; needed with ``diagnose_at``.
        start_step: the trainer's global step when recording starts (a resumed run).
    """

    def __init__(
        self,
        out_dir: str | Path,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        interval: int = 1,
        source: str = "torch",
        dataset: str = "custom",
        diagnose_at: Sequence[str | int] = (),
        diagnose_batches: Callable[[], Iterable[Any]] | None = None,
        loss_fn: LossFn | None = None,
        start_step: int = 0,
    ) -> None:
        optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate / Lightning wrappers
        if diagnose_at and (diagnose_batches is None or loss_fn is None):
            raise ValueError("diagnose_at needs diagnose_batches and loss_fn")
        self.run_dir = Path(out_dir)
        self.model, self.optimizer = model, optimizer
        self.recorder = UpdateStatistics(
            model, optimizer, self.run_dir, interval, start_step=start_step
        )
        self.diagnose_at = set(diagnose_at)
        self.diagnose_batches, self.loss_fn = diagnose_batches, loss_fn
        self.started = time.perf_counter()
        self.epochs = self._steps_in_epoch = 0
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = run_config(model, optimizer, source, dataset, self.run_dir.name)
        atomic_write_json(self.run_dir / CONFIG_FILE, config)
        if "init" in self.diagnose_at:
            self.diagnose("init")

    @property
    def steps(self) -> int:
        """Optimizer steps counted so far (``start_step`` included)."""
        return self.recorder.step

    @contextlib.contextmanager
    def step(self) -> Iterator[bool]:
        """``with recorder.step(): optimizer.step()``: :meth:`before_step` on entry,
        :meth:`after_step` on a normal exit (yields whether the step is recorded); a step that
        raises is not counted."""
        recorded = self.recorder.before_step()
        yield recorded
        self.after_step()

    def before_step(self) -> None:
        self.recorder.before_step()

    def after_step(self) -> None:
        self.recorder.after_step()
        self._steps_in_epoch += 1
        if self.recorder.step in self.diagnose_at:
            self.diagnose(self.recorder.step)

    def end_epoch(self, epoch: int) -> None:
        self.recorder.end_epoch(epoch)
        self.epochs, self._steps_in_epoch = max(self.epochs, epoch), 0

    def diagnose(self, at: str | int) -> Path:
        """:func:`scalefree.diagnose.diagnose` now, written beside the statistics."""
        from scalefree.diagnose import diagnose

        d = diagnose(self.model, self.loss_fn, self.diagnose_batches())
        point = at if isinstance(at, str) else f"step {at}"
        path = (
            diagnose_file(self.run_dir, at)
            if isinstance(at, str)
            else self.run_dir / f"diagnose_step_{at:07d}.json"
        )
        entry = {
            "diagnosis": d.to_dict(),
            "at": point,
            "step": self.recorder.step,
            "batches": d.num_batches,
            "model": type(self.model).__name__,
            "batch_norm": any(is_norm_module(m) for m in self.model.modules()),
            "run_dir": str(self.run_dir),
            "run_name": self.run_dir.name,
            "label": f"{self.run_dir.name} ({point})",
            "train_mode": True,
            "include_bias_norm": False,
            "scalefree_version": __version__,
        }
        atomic_write_json(path, entry)
        return path

    def finish(
        self, error: float | None, error_of: str, last: dict[str, Any] | None = None
    ) -> None:
        """The last epoch's statistics (if not written yet), ``diagnose_at`` "final", then
        result.json (module docstring)."""
        if self._steps_in_epoch:  # steps after the last epoch end (a run stopped mid-epoch)
            self.end_epoch(self.epochs + 1)
        if "final" in self.diagnose_at:
            self.diagnose("final")
        result = rundir_write.run_result(
            "completed",
            epochs_completed=self.epochs,
            steps=self.recorder.step,
            wall_time_s=time.perf_counter() - self.started,
            last=last,
            best_test_acc=None,
            eval_split="test",
        )
        result["test_error"] = float("nan") if error is None else float(error)  # NaN: unknown
        result["test_error_of"] = error_of
        rundir_write.write_result(self.run_dir, result)


def error_from(
    metrics: Mapping[str, Any], chosen: str | None, accuracy_keys: Sequence[str]
) -> tuple[float | None, str]:
    """(test error, what it is) from a trainer's last logged metrics: the ``chosen`` metric (an
    accuracy, i.e. a name with "acc", counts as 1 - it; anything else is taken as an error in
    [0, 1]), else 1 - the first of ``accuracy_keys`` logged, else (None, "none"). A loss is
    never taken for an error: tables and heatmaps compare errors."""
    keys = [chosen] if chosen is not None else list(accuracy_keys)
    for key in keys:
        if key in metrics:
            value = float(metrics[key])
            return (1.0 - value, f"1 - {key}") if "acc" in key else (value, key)
    return None, "none"


def first_batches(loader: Callable[[], Iterable[Any]], n: int) -> Callable[[], list[Any]]:
    """A callable returning the first ``n`` batches of ``loader()`` (looked up at each call)."""

    def first() -> list[Any]:
        out = []
        for batch in loader():
            out.append(batch)
            if len(out) == n:
                break
        return out

    return first


class CallbackSettings:
    """What the trainers' callbacks take and keep (see each callback's docstring)."""

    def __init__(
        self,
        out_dir: str | Path,
        interval: int = 1,
        *,
        dataset: str = "custom",
        diagnose_at: Sequence[str | int] = (),
        diagnose_batches: int = 4,
        error_metric: str | None = None,
    ) -> None:
        self.out_dir, self.interval, self.dataset = Path(out_dir), interval, dataset
        self.diagnose_at, self.n_diagnose = tuple(diagnose_at), diagnose_batches
        self.error_metric = error_metric
        self.run: Recorder | None = None


__all__ = [
    "CallbackSettings",
    "Recorder",
    "error_from",
    "first_batches",
    "optimizer_name",
    "run_config",
]
