"""The run directory's layout: file names, statuses and the result.json schema, in one place.

A run directory is ``<log folder>/<RunConfig.run_name()>`` and holds::

    config.json          the RunConfig (``to_dict``) + "run_name" + "env" (device, versions, ...)
    metrics.jsonl        one JSON object per evaluation (below)
    stats/epoch_NNNN.npz update statistics of one epoch (scalefree.rundir.stats)
    checkpoint.pt        latest complete epoch (+ checkpoint.prev.pt; scalefree.train.checkpoint)
    .lock                held by the process training the run (scalefree.locking)
    result.json          written last and atomically: its presence marks the run finished
    result.failed.json   a failed run's result.json, kept when a sweep retries it
    diagnose_init.json   ``scalefree diagnose`` at the run's initial weights / its last checkpoint
    diagnose_final.json  (+ a .png beside each; written on request, scalefree.diagnose.cli)

``result.json``: one JSON object whose schema is the typed definition below (:data:`RunResult`:
:class:`CompletedResult`, :class:`DivergedResult`, :class:`FailedResult`, one per status, each
with exactly the keys a result of that status has). The trainer writes completed and diverged
results, a sweep worker failed ones (a run that raised); :func:`result_problem` checks a result
against its status's definition (the writer checks every result it writes), and
:func:`read_problem` is what readers require, a subset (see there).

Tables and heatmaps charge diverged and failed runs DIVERGED_ERROR (see RunRecord.test_error).

``metrics.jsonl``: one JSON object per evaluation: ``epoch``, ``step``, ``train_loss``,
``train_acc``, ``test_loss``, ``test_acc``, ``lr`` and ``wall_time_s`` (cumulative over resumes);
result.json's ``final`` and ``last_evaluation`` are such rows. Accuracies are fractions in
[0, 1]; losses include ``--loss-multiplier``.
"""

from __future__ import annotations

import math
import types
from pathlib import Path
from typing import (
    Any,
    Literal,
    Protocol,
    TypedDict,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
RESULT_FILE = "result.json"
# A failed run's result.json, kept beside it when a sweep retries the run (--retry-failed).
FAILED_RESULT_KEPT = "result.failed.json"
CHECKPOINT_FILE = "checkpoint.pt"
# The checkpoint before the latest, kept until the new one is whole (scalefree.train.checkpoint).
PREVIOUS_CHECKPOINT_FILE = "checkpoint.prev.pt"
STATS_DIR = "stats"
STATS_GLOB = "epoch_*.npz"
# Test error charged to a diverged (or failed) run in heatmaps and tables: the reference scripts' 1.1.
DIVERGED_ERROR = 1.1


# ------------------------------------------------------------------------ the result.json schema


class OfficialTestSplit(TypedDict):
    """A --validation run's official test split, evaluated once after its last step."""

    loss: float
    acc: float
    error: float  # 1 - acc


class _DivergenceCore(TypedDict):
    reason: Literal["non-finite", "factor"]
    loss: float | None  # the training loss that diverged; null when it was not finite
    epoch: int
    step: int


class Divergence(_DivergenceCore, total=False):
    """Why a diverged run was stopped (docs/design.md section 5); the factor rule adds the
    first step's loss and the factor it was exceeded by."""

    reference_loss: float
    factor: float


class _ResultCore(TypedDict):
    """The keys every result has, whatever its status."""

    epochs_completed: int  # the epoch the run ended in
    steps: int  # optimizer steps from the start of the run
    # Seconds: the trainer's, cumulative over resumes (as metrics.jsonl's wall_time_s); a failed
    # run's, the sweep worker's time of the attempt that raised.
    wall_time_s: float
    last_evaluation: dict[str, Any] | None  # the last metrics.jsonl row (any status)
    best_test_acc: float | None  # the highest test_acc of any evaluation
    eval_split: Literal["test", "val"]  # what test_* measured: "val" under --validation
    message: str | None  # why the run ended early (diverged, failed)


class _CompletedCore(_ResultCore):
    status: Literal["completed"]
    # the last evaluation, a metrics.jsonl row; None only from a loop (scalefree.integrations)
    # that logged none
    final: dict[str, Any] | None
    test_error: float  # 1 - final test_acc (of the validation split under --validation)
    divergence: None
    test_split: OfficialTestSplit | None  # --validation runs only


class CompletedResult(_CompletedCore, total=False):
    """A run that trained all its epochs (or --max-steps). A run recorded from another training
    loop (:mod:`scalefree.integrations`) says what its ``test_error`` is in ``test_error_of``
    (e.g. "1 - eval_accuracy"); "none" when that loop logged no accuracy, and test_error is NaN."""

    test_error_of: str


class DivergedResult(_ResultCore):
    """A run stopped by the divergence rule; tables charge it DIVERGED_ERROR."""

    status: Literal["diverged"]
    final: None
    test_error: None
    divergence: Divergence
    test_split: None


class FailedResult(_ResultCore):
    """A run that raised, recorded by the sweep worker that ran it."""

    status: Literal["failed"]
    final: None
    test_error: float  # DIVERGED_ERROR, as for every unfinished outcome
    traceback: str | None


RunResult = CompletedResult | DivergedResult | FailedResult
# status -> the definition of a result with that status.
RESULT_TYPES: dict[str, type] = {
    get_args(get_type_hints(t)["status"])[0]: t
    for t in (CompletedResult, DivergedResult, FailedResult)
}
STATUSES = tuple(RESULT_TYPES)  # ("completed", "diverged", "failed")


def result_problem(result: Any) -> str | None:
    """What makes ``result`` not a result.json of its status (None: it is one), checked against
    :data:`RESULT_TYPES`: the status, exactly that status's keys, and the type of every value."""
    if not isinstance(result, dict):
        return f"a JSON {type(result).__name__}, not an object"
    status = result.get("status")
    if status not in RESULT_TYPES:
        return f"'status' is {status!r}, not one of {', '.join(STATUSES)}"
    return _dict_problem(result, RESULT_TYPES[status], f"a {status} result")


def finite_number(value: Any) -> bool:
    """A JSON number that is neither NaN nor infinite (a bool is no number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_problem(result: dict[str, Any]) -> str | None:
    """What readers require of a result.json, None when it has it: a known status and, for a
    completed run, a numeric ``test_error`` (the number every table uses). Less than
    :func:`result_problem`: a result written by an older version with fewer keys still marks its
    run finished, instead of the run being trained again."""
    status = result.get("status")
    if status not in RESULT_TYPES:
        return f"'status' is {status!r}, not one of {', '.join(STATUSES)}"
    err = result.get("test_error")
    unknown_ok = result.get("test_error_of") == "none"  # an integration run without an accuracy
    if status == "completed" and not (
        finite_number(err) or (unknown_ok and _value_problem(err, float, "") is None)
    ):
        return f"a completed result whose 'test_error' is {err!r}, not a finite number"
    return None


def _dict_problem(value: dict[str, Any], typed: Any, where: str) -> str | None:
    hints = get_type_hints(typed)
    missing = sorted(typed.__required_keys__ - value.keys())
    if missing:
        return f"{where} lacks {', '.join(map(repr, missing))}"
    unknown = sorted(value.keys() - hints.keys())
    if unknown:
        return f"{where} has unknown key(s) {', '.join(map(repr, unknown))}"
    for key, item in value.items():
        problem = _value_problem(item, hints[key], f"{where}'s {key!r}")
        if problem is not None:
            return problem
    return None


def _value_problem(value: Any, hint: Any, where: str) -> str | None:
    """Whether a JSON value matches a type of the schema (float takes ints, never a bool)."""
    origin = get_origin(hint)
    if hint is Any:
        return None
    if origin in (Union, types.UnionType):
        if any(_value_problem(value, h, where) is None for h in get_args(hint)):
            return None
        return f"{where} is {value!r}, not {_type_name(hint)}"
    if is_typeddict(hint):
        if not isinstance(value, dict):
            return f"{where} is {value!r}, not an object"
        return _dict_problem(value, hint, where)
    if origin is Literal:
        ok = value in get_args(hint) and isinstance(value, str)
    elif hint is type(None):
        ok = value is None
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:  # str, dict[str, Any]
        ok = isinstance(value, origin or hint)
    return None if ok else f"{where} is {value!r}, not {_type_name(hint)}"


def _type_name(hint: Any) -> str:
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_type_name(h) for h in get_args(hint))
    if get_origin(hint) is Literal:
        return " or ".join(map(repr, get_args(hint)))
    if hint is type(None):
        return "null"
    return getattr(get_origin(hint) or hint, "__name__", str(hint))


class RunSpec(Protocol):
    """What the run directory needs of a run's settings, and all it knows of them: where the run
    lives, what identifies it, what config.json holds. ``scalefree.train.config.RunConfig`` is one;
    the run directory never imports it (docs/design.md section 1: layers point down)."""

    @property
    def log_folder(self) -> str: ...

    @property
    def validation(self) -> bool:
        """Whether the run evaluates on a held-out validation split (``eval_split`` "val")."""
        ...

    def run_name(self) -> str: ...

    def identity(self) -> dict[str, Any]:
        """The settings that determine what the run computes (a resumed run must match)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """config.json's content (JSON-ready)."""
        ...

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        """The settings read back from a config.json."""
        ...


def run_dir_of(config: RunSpec) -> Path:
    """Where a RunConfig's run lives: ``<log_folder>/<run_name()>`` (the only place this is built)."""
    return Path(config.log_folder) / config.run_name()


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether a run directory holds a checkpoint (latest or previous) of an unfinished run."""
    run_dir = Path(run_dir)
    return (run_dir / CHECKPOINT_FILE).exists() or (run_dir / PREVIOUS_CHECKPOINT_FILE).exists()


def stats_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / STATS_DIR


def stats_name(epoch: int) -> str:
    """The name of one epoch's statistics file inside ``stats/``."""
    return f"epoch_{epoch:04d}.npz"


def stats_file(run_dir: str | Path, epoch: int) -> Path:
    """The statistics file of one epoch."""
    return stats_dir(run_dir) / stats_name(epoch)


def stats_files(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(epoch, path) of every statistics file of a run, in epoch order."""
    found = []
    for f in stats_dir(run_dir).glob(STATS_GLOB):
        try:
            found.append((int(f.stem.split("_")[1]), f))
        except (IndexError, ValueError):
            continue  # not one of ours (e.g. a user's copy "epoch_final.npz"): ignored
    return sorted(found)


# ``scalefree diagnose`` of a run directory: at its initial weights or at its last checkpoint.
DIAGNOSE_AT = ("init", "final")


def diagnose_file(run_dir: str | Path, at: str, suffix: str = ".json") -> Path:
    """``diagnose_<at>.json`` (or ``.png`` with ``suffix``) of a run directory."""
    if at not in DIAGNOSE_AT:
        raise ValueError(f"diagnose point must be one of {', '.join(DIAGNOSE_AT)}, got {at!r}")
    return Path(run_dir) / f"diagnose_{at}{suffix}"
