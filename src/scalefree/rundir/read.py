"""Reading run directories: every reader of config.json, metrics.jsonl and result.json.

Damaged files are data to report, never a crash and never deleted: a metrics line that is not a
row is skipped by readers, reported with its line number and kept on any rewrite (only a torn
last line, cut off by a crash mid-write, is dropped); an unreadable ``result.json`` makes the run
incomplete (the trainer sets it aside as ``result.json.damaged-<time>`` and resumes); an unreadable
``config.json`` leaves the run out of tables, with a note naming the file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from scalefree.io import read_bytes_capped
from scalefree.rundir.layout import (
    CONFIG_FILE,
    METRICS_FILE,
    RESULT_FILE,
    finite_number,
    read_problem,
)
from scalefree.rundir.summary import run_error

# Readers refuse larger files unread (a crafted 1 GB file must not exhaust memory). Real files are
# far below: a config or result is a few kB, a diagnose file of ResNet-218 ~0.2 MB, metrics.jsonl
# ~300 bytes per evaluation.
MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_METRICS_BYTES = 256 * 1024 * 1024


class DamagedFile(Exception):
    """A run file that cannot be read as its format says; names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = Path(path), problem


@dataclass
class RunRecord:
    path: Path
    config: dict[str, Any]
    result: dict[str, Any] | None = field(default=None)
    problem: str | None = None  # a damaged result.json: the run counts as incomplete

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        """completed | diverged | failed, or ``incomplete`` when no (readable) result.json exists."""
        return self.result["status"] if self.result else "incomplete"

    @property
    def test_error(self) -> float | None:
        """Final test error as a fraction; DIVERGED_ERROR for diverged/failed; None if incomplete
        (the summary model's rule, :func:`scalefree.rundir.summary.run_error`)."""
        return run_error(self.result)

    @cached_property
    def metrics(self) -> list[dict[str, Any]]:
        """The valid rows of metrics.jsonl; none (with a warning naming it) when it is unreadable."""
        try:
            return read_metrics(self.path)
        except DamagedFile as exc:
            print(f"warning: {exc}; its curves are left out", file=sys.stderr)
            return []

    def get(self, key: str, default: Any = None) -> Any:
        return self.config.get(key, default)


# ------------------------------------------------------------------------------------ metrics.jsonl

_NUMBER_KEYS = ("step", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "wall_time_s")


@dataclass
class MetricsFile:
    """metrics.jsonl as read: the valid rows, and every line that is not one.

    ``lines`` holds every line of the file in order (damaged ones included, the torn tail not), so
    a rewrite can keep what it cannot parse. ``damaged`` is (line number, problem) per bad line.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    damaged: list[tuple[int, str]] = field(default_factory=list)
    torn_tail: bool = False  # the last line was cut off (no newline, not valid): a crash mid-write


def _row_problem(text: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg})"
    except RecursionError:
        return None, "JSON nested too deeply"
    if not isinstance(row, dict):
        return None, f"a JSON {type(row).__name__}, not an object"
    epoch = row.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int):
        return None, "no integer 'epoch'"
    for key in _NUMBER_KEYS:
        v = row.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            return None, f"{key!r} is not a number"
    return row, None


def read_metrics_file(run_dir: str | Path) -> MetricsFile:
    """Parse metrics.jsonl without losing anything: only a torn final line is dropped.

    DamagedFile when the file is above MAX_METRICS_BYTES (refused unread) or cannot be read."""
    path = Path(run_dir) / METRICS_FILE
    out = MetricsFile()
    try:
        text = read_bytes_capped(path, MAX_METRICS_BYTES).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return out
    except (OSError, ValueError) as exc:
        raise DamagedFile(path, _read_problem(exc)) from None
    lines = text.split("\n")
    complete = lines[:-1]  # the part after the last newline is a line only if non-empty
    tail = lines[-1]
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        row, problem = _row_problem(line)
        out.lines.append((line, row))
        if row is None:
            out.damaged.append((number, str(problem)))
        else:
            out.rows.append(row)
    if tail.strip():
        row, problem = _row_problem(tail)
        if row is None:
            out.torn_tail = True  # cut off mid-write: the only line ever dropped
        else:
            out.lines.append((tail, row))
            out.rows.append(row)
    return out


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every valid row of metrics.jsonl (damaged lines are skipped here, see read_metrics_file)."""
    return read_metrics_file(run_dir).rows


def describe_damaged(run_dir: str | Path, metrics: MetricsFile) -> list[str]:
    """One message per damaged metrics line: file, line number, problem."""
    path = Path(run_dir) / METRICS_FILE
    return [f"{path} line {n} is damaged ({p}); it is kept and skipped" for n, p in metrics.damaged]


# ------------------------------------------------------------------------------------ config, result


def read_json_object(path: str | Path) -> dict[str, Any]:
    """A JSON object from ``path``; DamagedFile when it is unreadable, above MAX_JSON_BYTES (not
    read), not JSON, nested too deeply or not an object."""
    try:
        text = read_bytes_capped(path, MAX_JSON_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise DamagedFile(path, "not UTF-8 text") from None
    except (OSError, ValueError) as exc:
        raise DamagedFile(path, _read_problem(exc)) from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        what = "empty" if not text.strip() else f"not valid JSON ({exc.msg}, line {exc.lineno})"
        raise DamagedFile(path, f"{what}, e.g. truncated") from None
    except RecursionError:
        raise DamagedFile(path, "JSON nested too deeply to be one of ours") from None
    if not isinstance(obj, dict):
        raise DamagedFile(path, f"holds a JSON {type(obj).__name__}, not an object")
    return obj


def _read_problem(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return f"cannot be read ({exc.strerror or exc})"
    return f"{exc}; not read"


def read_result(run_dir: str | Path) -> dict[str, Any] | None:
    """result.json, None when absent; DamagedFile when it lacks what readers need
    (:func:`scalefree.rundir.layout.read_problem`; the schema is ``layout.RunResult``)."""
    path = Path(run_dir) / RESULT_FILE
    if not path.exists():
        return None
    result = read_json_object(path)
    problem = read_problem(result)
    if problem is not None:
        raise DamagedFile(path, problem)
    return result


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """config.json; DamagedFile when it lacks what the tables need (method, eta0, weight decay)."""
    path = Path(run_dir) / CONFIG_FILE
    config = read_json_object(path)
    if not isinstance(config.get("optim_method"), str):
        raise DamagedFile(path, "no 'optim_method' string")
    for key in ("eta0", "weight_decay"):
        if not finite_number(config.get(key)):  # NaN, 1e400: no run was ever trained with them
            raise DamagedFile(path, f"{key!r} is missing or not a finite number")
    return config


def set_aside(path: Path) -> Path:
    """Rename a damaged file to ``<name>.damaged-<UTC time>`` beside it (kept, never deleted)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while os.path.lexists(target):  # never onto anything, a planted link included
        target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
        n += 1
    os.replace(path, target)
    return target


# ------------------------------------------------------------------------------------ folders


def load_run(run_dir: str | Path) -> RunRecord:
    """One run; DamagedFile if its config.json is unusable. A damaged result.json makes the run
    incomplete, with ``problem`` saying why."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    try:
        result, problem = read_result(run_dir), None
    except DamagedFile as exc:
        result, problem = None, str(exc)
    return RunRecord(path=run_dir, config=config, result=result, problem=problem)


def iter_run_dirs(folder: str | Path) -> Iterator[Path]:
    """Every directory below ``folder`` (itself included) that holds a config.json, sorted."""
    folder = Path(folder)
    for cfg in sorted(folder.rglob(CONFIG_FILE)):
        yield cfg.parent


def load_runs(folder: str | Path, damaged: list[str] | None = None) -> list[RunRecord]:
    """Every readable run below ``folder``. A run whose config.json is damaged is left out and
    described in ``damaged`` (when given) and on stderr; a damaged result.json is warned about and
    the run counts as incomplete. Nothing is changed on disk."""
    runs = []
    for d in iter_run_dirs(folder):
        try:
            run = load_run(d)
        except DamagedFile as exc:
            note = f"{exc}; run left out"
            print(f"warning: {note}", file=sys.stderr)
            if damaged is not None:
                damaged.append(note)
            continue
        if run.problem:
            print(f"warning: {run.problem}; run counted as incomplete", file=sys.stderr)
        runs.append(run)
    return runs
