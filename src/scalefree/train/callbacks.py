"""Hooks into the training loop: what progress display, statistics and timing attach to.

The loop (:mod:`scalefree.train.loop`) calls every hook of every callback in the order the
callbacks were given. A callback overrides only the hooks it needs; the base class does nothing.
The hooks are the minimal set that the users in this package need:

==================  ===========================================================  ===========
hook                when                                                         used by
==================  ===========================================================  ===========
on_run_start        after setup and resume, before the first step                progress
on_before_step      after ``backward``, before ``optimizer.step()``              statistics
on_step_end         after ``optimizer.step()``                                    statistics
on_loss_check       every CHECK_EVERY steps and at an epoch's end: mean loss     progress
on_evaluate         after an evaluation, on rank 0 (metrics row written)         progress
on_epoch_end        rank 0, after the metrics row, before the checkpoint         statistics
on_phase_end        after a timed phase of the epoch's end (seconds spent)       timing
on_run_end          always last; ``result`` is None when the run raised          progress,
                                                                                 statistics
==================  ===========================================================  ===========

Hooks receive the :class:`~scalefree.train.run_state.RunState`, read-only by convention: a
callback that changes the model or the optimizer changes the run, and then its run name no
longer says what was computed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scalefree.train.run_state import RunState

# Phases reported to on_phase_end, in the order they happen at an evaluated epoch's end.
PHASES = ("evaluate", "metrics", "epoch_end", "checkpoint")


class Callback:
    """Base class: every hook is a no-op. See the module docstring for when each is called."""

    def on_run_start(self, state: RunState) -> None:
        pass

    def on_before_step(self, state: RunState, iteration: int) -> None:
        pass

    def on_step_end(self, state: RunState, iteration: int) -> None:
        pass

    def on_loss_check(
        self, state: RunState, steps: int, mean_loss: float, images_per_s: float
    ) -> None:
        pass

    def on_evaluate(self, state: RunState, metrics: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, state: RunState) -> None:
        pass

    def on_phase_end(self, state: RunState, phase: str, seconds: float) -> None:
        pass

    def on_run_end(self, state: RunState, result: dict[str, Any] | None) -> None:
        pass


class CallbackList(Callback):
    """Calls each hook on every callback, in order; the loop talks to this one object."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks must be scalefree.train.callbacks.Callback instances, got "
                    f"{type(cb).__name__}; subclass Callback and override the hooks you need"
                )

    def on_run_start(self, state: RunState) -> None:
        for cb in self.callbacks:
            cb.on_run_start(state)

    def on_before_step(self, state: RunState, iteration: int) -> None:
        for cb in self.callbacks:
            cb.on_before_step(state, iteration)

    def on_step_end(self, state: RunState, iteration: int) -> None:
        for cb in self.callbacks:
            cb.on_step_end(state, iteration)

    def on_loss_check(
        self, state: RunState, steps: int, mean_loss: float, images_per_s: float
    ) -> None:
        for cb in self.callbacks:
            cb.on_loss_check(state, steps, mean_loss, images_per_s)

    def on_evaluate(self, state: RunState, metrics: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_evaluate(state, metrics)

    def on_epoch_end(self, state: RunState) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(state)

    def on_phase_end(self, state: RunState, phase: str, seconds: float) -> None:
        for cb in self.callbacks:
            cb.on_phase_end(state, phase, seconds)

    def on_run_end(self, state: RunState, result: dict[str, Any] | None) -> None:
        """Every callback's on_run_end runs even when an earlier one raises (they release
        resources, e.g. close a progress bar); the first error is raised afterwards."""
        error: BaseException | None = None
        for cb in self.callbacks:
            try:
                cb.on_run_end(state, result)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                error = error or exc
        if error is not None:
            raise error


class PhaseTimes(Callback):
    """Seconds spent per phase of the epochs' ends (see ``PHASES``), summed over the run.

    ``seconds["evaluate"]`` is both evaluations (training and held-out set); ``metrics`` the
    metrics row; ``epoch_end`` the callbacks' epoch-end work (the statistics file);
    ``checkpoint`` the checkpoint. Training time is the run's wall time minus these.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def on_phase_end(self, state: RunState, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds


__all__ = ["PHASES", "Callback", "CallbackList", "PhaseTimes"]
