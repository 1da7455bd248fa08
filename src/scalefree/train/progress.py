"""What a training run tells the person watching it (``--progress``).

* at start-up: how long the run is, in epochs and optimizer steps (``--train-epochs`` defaults to
  the reference's 300, which on a CPU is days: a user who forgot the flag learns it at once);
* after the first steps: the measured time per step and the expected length of the whole run,
  refined after the first epoch (which includes an evaluation);
* per evaluated epoch: one line with train/test loss and accuracy (a bar on a terminal);
* once, when a run's test accuracy is still at chance after an epoch: why that happens (a deep
  net without batch norm sits at chance for its first epochs) and what to check.

Nothing is shown with ``--progress none`` (sweeps) or on ranks other than 0.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from scalefree.chance import at_chance, chance_error
from scalefree.train.callbacks import Callback

ESTIMATE_AFTER_S = 3.0  # measure at least this long (after the first, warm-up, check) ...
ESTIMATE_AFTER_STEPS = 10  # ... and this many steps before estimating the run's length
LONG_RUN_S = 15 * 60  # longer estimates come with a hint on how to shorten the run


def fmt_duration(seconds: float) -> str:
    """45 s, 12 min, 3.4 h, 2.1 days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


@dataclass
class RunProgress:
    """Progress display of one run; see the module docstring."""

    mode: str  # bar | plain | none
    total_steps: int  # steps this process will run (after a resume: the ones left)
    train_epochs: int = 1
    steps_per_epoch: int = 1
    num_classes: int = 10
    batch_norm: bool = True
    n_eval: int | None = None
    bar: Any = None
    started: float = field(default_factory=time.perf_counter)
    _mark: tuple[float, int] | None = None  # (time, steps done) after the first check
    _done: int = 0
    _estimated: bool = False
    _epoch_estimated: bool = False
    _chance_noted: bool = False

    @classmethod
    def for_run(
        cls,
        config: Any,
        data: Any,
        total_steps: int,
        start_step: int,
        steps_per_epoch: int,
        enabled: bool,
    ) -> RunProgress:
        """The display of a run of ``config`` (a RunConfig) on ``data`` (its DataBundle) that
        runs steps ``start_step + 1 .. total_steps``; announces the run's length unless disabled
        (``--progress none`` or not rank 0)."""
        left = max(total_steps - start_step, 0)
        mode = config.progress
        if not enabled or mode == "none":
            return cls("none", left)
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "plain"
        bar = None
        if mode == "bar":
            from tqdm import tqdm

            bar = tqdm(total=left, unit="step", dynamic_ncols=True, leave=False)
        progress = cls(
            mode,
            left,
            train_epochs=config.train_epochs,
            steps_per_epoch=steps_per_epoch,
            num_classes=data.num_classes,
            batch_norm=config.batch_norm,
            n_eval=len(data.eval_images),
            bar=bar,
        )
        progress.say(progress.start_line(start_step))
        return progress

    def start_line(self, start_step: int) -> str:
        planned = self.train_epochs * self.steps_per_epoch
        epochs = f"{self.train_epochs} epoch{'s' if self.train_epochs != 1 else ''}"
        line = f"training {epochs} x {self.steps_per_epoch} steps = {planned} optimizer steps"
        total = start_step + self.total_steps
        if total < planned:
            line += f", stopping after {total} (--max-steps)"
        if start_step:
            line += f"; resuming at step {start_step}, {self.total_steps} left"
        return line + "; time estimate after the first steps"

    def say(self, line: str) -> None:
        if self.mode == "plain":
            print(line, flush=True)
        elif self.bar is not None:
            self.bar.write(line)

    def step(self, n: int, loss: float | None, images_per_s: float) -> None:
        self._done += n
        if self.bar is not None:
            self.bar.update(n)
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{images_per_s:.0f}")
        if self.mode == "none" or self._estimated:
            return
        now = time.perf_counter()
        if self._mark is None:  # the first steps warm up (allocation, cudnn benchmark, compile)
            self._mark = (now, self._done)
            return
        t0, s0 = self._mark
        if self._done - s0 >= ESTIMATE_AFTER_STEPS and now - t0 >= ESTIMATE_AFTER_S:
            self._estimated = True
            per_step = (now - t0) / (self._done - s0)
            left = per_step * (self.total_steps - self._done)
            self.say(
                f"{per_step:.3g} s per step: the {self.total_steps} steps take about "
                f"{fmt_duration(per_step * self.total_steps)} (about {fmt_duration(left)} left, "
                f"plus evaluations){self._hint(left)}"
            )

    def epoch(self, line: str) -> None:
        self.say(line)

    def evaluated(self, epoch: int, metrics: dict[str, float]) -> None:
        """After an evaluation: refine the estimate once, and explain a run stuck at chance."""
        if self.mode == "none":
            return
        elapsed = time.perf_counter() - self.started
        if not self._epoch_estimated and self._done and self._done < self.total_steps:
            self._epoch_estimated = True
            left = elapsed / self._done * (self.total_steps - self._done)
            self.say(
                f"epoch {epoch} took {fmt_duration(elapsed)} with its evaluation: about "
                f"{fmt_duration(left)} to go{self._hint(left)}"
            )
        note = self.chance_note(epoch, metrics.get("test_acc", math.nan))
        if note:
            self._chance_noted = True
            self.say(note)

    def chance_note(self, epoch: int, test_acc: float) -> str | None:
        """The one-time explanation for a test accuracy still at chance (None otherwise)."""
        if self._chance_noted or not math.isfinite(test_acc):
            return None
        if not at_chance(1.0 - test_acc, self.num_classes, self.n_eval):
            return None
        chance_acc = 1.0 - chance_error(self.num_classes)
        head = (
            f"note: test accuracy {test_acc:.3f} after epoch {epoch} is still at chance "
            f"({chance_acc:.2f} for {self.num_classes} classes)."
        )
        if not self.batch_norm:
            return (
                f"{head} This is expected for the first epochs of a deep net without batch norm: "
                "its residual sums start with very large outputs, Adam's first steps shrink them, "
                f"and the net predicts one class (loss near ln {self.num_classes} = "
                f"{math.log(self.num_classes):.2f}) for a few hundred steps before it learns. "
                "Train longer, or use batch norm for a quick check (README: 'Why a net without "
                "batch norm starts at chance')."
            )
        return f"{head} If it stays there, try a smaller --eta0."

    def _hint(self, left_s: float) -> str:
        if left_s < LONG_RUN_S:
            return ""
        return (
            f". --train-epochs is {self.train_epochs}; pass a smaller --train-epochs "
            "(or --max-steps) for a shorter run"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class ProgressCallback(Callback):
    """The trainer's display: a :class:`RunProgress` driven by the training loop's hooks."""

    def __init__(self) -> None:
        self.progress: RunProgress | None = None

    def on_run_start(self, state: Any) -> None:
        self.progress = RunProgress.for_run(
            state.config,
            state.data,
            state.total_steps,
            state.step,
            state.batches_per_epoch,
            state.ctx.is_main,
        )

    def on_loss_check(self, state: Any, steps: int, mean_loss: float, images_per_s: float) -> None:
        if self.progress is not None:
            self.progress.step(steps, mean_loss, images_per_s)

    def on_evaluate(self, state: Any, metrics: dict[str, float]) -> None:
        if self.progress is None:
            return
        m = metrics
        self.progress.epoch(
            f"epoch {state.epoch}/{state.config.train_epochs} step {state.step}: train loss "
            f"{m['train_loss']:.4f} acc {m['train_acc']:.4f} | {state.data.eval_split} loss "
            f"{m['test_loss']:.4f} acc {m['test_acc']:.4f} | {state.elapsed():.1f}s"
        )
        self.progress.evaluated(state.epoch, metrics)

    def on_run_end(self, state: Any, result: dict[str, Any] | None) -> None:
        if self.progress is not None:
            self.progress.close()


__all__ = ["ProgressCallback", "RunProgress", "fmt_duration"]
