"""Writing run directories: creating and checking them, metrics rows, config.json, result.json.

Order of writes (see :mod:`scalefree.rundir.layout`): ``config.json`` at the start; one fsynced line
per evaluation appended to ``metrics.jsonl``; ``result.json`` last, atomically. Only rank 0 writes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from scalefree.errors import UsageError
from scalefree.io import (
    atomic_write_json,
    atomic_write_text,
    copy_file,
    open_append,
    refuse_symlinks_in,
)
from scalefree.locking import LOCK_FILE, holder
from scalefree.rundir.layout import (
    CONFIG_FILE,
    DIVERGED_ERROR,
    METRICS_FILE,
    RESULT_FILE,
    RunResult,
    RunSpec,
    has_checkpoint,
    result_problem,
    run_dir_of,
    stats_files,
)
from scalefree.rundir.read import (
    DamagedFile,
    describe_damaged,
    read_json_object,
    read_metrics,
    read_metrics_file,
    read_result,
    set_aside,
)


def append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    path = run_dir / METRICS_FILE
    try:
        with open_append(path) as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def truncate_after(run_dir: Path, epoch: int) -> None:
    """Drop metrics rows and statistics of epochs after the checkpoint (written before a crash).

    Only rows of later epochs and a torn last line are dropped; a damaged line is kept where it
    is (and reported with its number). When the file must be rewritten, the original is kept
    beside it as ``metrics.jsonl.bak-<UTC time>``.
    """
    path = run_dir / METRICS_FILE
    parsed = read_metrics_file(run_dir)
    for note in describe_damaged(run_dir, parsed):
        print(f"warning: {note}", file=sys.stderr)
    kept = [text for text, row in parsed.lines if row is None or row["epoch"] <= epoch]
    if path.exists() and (len(kept) != len(parsed.lines) or not _ends_with_newline(path)):
        backup = path.with_name(
            f"{METRICS_FILE}.bak-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
        )
        copy_file(path, backup)
        print(
            f"note: {path}: dropped {len(parsed.lines) - len(kept)} row(s) of epochs after "
            f"{epoch}{' and a torn last line' if parsed.torn_tail else ''}; the original is kept "
            f"as {backup.name}",
            file=sys.stderr,
        )
        if kept:
            atomic_write_text(path, "".join(t + "\n" for t in kept))
        else:
            path.unlink()
    for stats_epoch, f in stats_files(run_dir):
        if stats_epoch > epoch:
            f.unlink()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def check_run_dir(run_dir: Path, config: RunSpec, resume: bool) -> None:
    """Refuse to clobber a different run or an unfinished one (read-only: safe on every rank)."""
    refuse_symlinks_in(run_dir)  # links planted in a shared log folder: refused before anything
    existing = run_dir / CONFIG_FILE
    if existing.exists():
        try:
            saved = type(config).from_dict(read_json_object(existing)).identity()
        except (DamagedFile, UsageError, TypeError) as exc:
            raise UsageError(
                f"{existing} is damaged ({exc}); restore it, or delete the run directory to start "
                "this run over"
            ) from None
        mine = config.identity()
        if saved != mine:
            diff = {k: (v, mine.get(k)) for k, v in saved.items() if mine.get(k) != v}
            raise UsageError(
                f"{run_dir} holds a run with different settings {diff}; use another --log-folder"
            )
    if has_checkpoint(run_dir) and not resume:
        raise UsageError(
            f"{run_dir} already holds a checkpoint of an unfinished run; pass --resume to continue it "
            "or delete the folder to start over"
        )


def create_run_dir(run_dir: Path) -> None:
    """Create the run directory and check it is writable before any training starts."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        refuse_symlinks_in(run_dir)  # planted links (shared log folder): refused before any write
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=run_dir)  # O_EXCL: never a link
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(
            f"cannot write to the log folder {run_dir.parent} ({exc.strerror or exc}); "
            "choose a writable --log-folder"
        ) from exc


def first_missing(path: Path) -> Path | None:
    """The topmost folder of ``path`` that does not exist yet (what a mkdir -p would create)."""
    missing = None
    for p in (path, *path.parents):
        if p.exists():
            break
        missing = p
    return missing


def remove_if_untouched(created: Path | None, run_dir: Path) -> None:
    """After a usage error: remove the folders this call created, if they hold nothing but the lock."""
    if created is None or not run_dir.is_dir():
        return
    if any(p.name != LOCK_FILE for p in run_dir.iterdir()):
        return
    shutil.rmtree(created, ignore_errors=True)


def finished_result(run_dir: Path, set_damaged_aside: bool = False) -> dict[str, Any] | None:
    """result.json when the run is finished; None when unfinished or when result.json is damaged
    (then, under the lock, it is renamed aside, named on stderr, and the run resumes)."""
    try:
        return read_result(run_dir)
    except DamagedFile as exc:
        if not set_damaged_aside:
            return None
        kept = set_aside(exc.path)
        print(
            f"warning: {exc}; kept as {kept.name}, the run is treated as unfinished",
            file=sys.stderr,
        )
        return None


def held_message(run_dir: Path) -> str:
    who = holder(run_dir) or "another process"
    return (
        f"{run_dir} is being trained by {who} (it holds {run_dir / LOCK_FILE}); wait for it to "
        "finish or stop that process, then rerun"
    )


def write_config(run_dir: Path, config: RunSpec, env: dict[str, Any] | None = None) -> None:
    """config.json: the RunConfig, the directory's name and (from the trainer) the environment."""
    extra: dict[str, Any] = {"run_name": run_dir.name}
    if env is not None:
        extra["env"] = env
    atomic_write_json(run_dir / CONFIG_FILE, config.to_dict() | extra)


def run_result(
    status: str,
    *,
    epochs_completed: int,
    steps: int,
    wall_time_s: float,
    last: dict[str, Any] | None,
    best_test_acc: float | None,
    eval_split: str,
    message: str | None = None,
    divergence: dict[str, Any] | None = None,
    test_split: dict[str, float] | None = None,
) -> RunResult:
    """The result.json of a run the trainer finished (completed or diverged; the schema is
    :data:`~scalefree.rundir.layout.RunResult`).

    ``test_split``: loss, accuracy and error on the official test split of a run that evaluated on
    a validation split (``--validation``), measured once after its last step; None otherwise.
    """
    completed = status == "completed"
    return _result(
        status,
        epochs_completed=epochs_completed,
        steps=steps,
        wall_time_s=wall_time_s,
        final=last if completed else None,
        last=last,
        test_error=(1.0 - last["test_acc"]) if completed and last else None,
        best_test_acc=best_test_acc,
        eval_split=eval_split,
        message=message,
        divergence=divergence,
        test_split=test_split,
    )


def _result(
    status: str,
    *,
    epochs_completed: int,
    steps: int,
    wall_time_s: float,
    final: dict[str, Any] | None,
    last: dict[str, Any] | None,
    test_error: float | None,
    best_test_acc: float | None,
    eval_split: str,
    message: str | None,
    **own: Any,
) -> RunResult:
    """A result.json of any status: the keys every status has, in their order, then the status's
    own (layout.CompletedResult, DivergedResult, FailedResult)."""
    common = {
        "status": status,
        "epochs_completed": epochs_completed,
        "steps": steps,
        "wall_time_s": round(wall_time_s, 3),
        "final": final,
        "last_evaluation": last,
        "test_error": test_error,
        "best_test_acc": best_test_acc,
        "eval_split": eval_split,
        "message": message,
    }
    return cast(RunResult, common | own)


def write_result(run_dir: Path, result: RunResult) -> None:
    """result.json, atomically: the last write of a run, which marks it finished. A result that
    does not match its status's schema is a bug here, refused before anything is written."""
    problem = result_problem(result)
    if problem is not None:
        raise ValueError(f"refusing to write {run_dir / RESULT_FILE}: {problem}")
    atomic_write_json(run_dir / RESULT_FILE, result)


def record_failure(
    config: RunSpec, message: str, wall_time_s: float, tb: str | None = None
) -> RunResult:
    """Write result.json with status ``failed`` for a run that raised (a sweep worker's crash).

    The last evaluation that made it to metrics.jsonl is kept; ``test_error`` is DIVERGED_ERROR as
    for every unfinished outcome. config.json is written too when the crash came before the
    trainer wrote it, so readers (load_runs, the summary tables) see the run.
    """
    run_dir = run_dir_of(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / CONFIG_FILE).exists():
        write_config(run_dir, config)
    rows = read_metrics(run_dir)
    last = rows[-1] if rows else None
    result = _result(
        "failed",
        epochs_completed=int(last["epoch"]) if last else 0,
        steps=int(last.get("step") or 0) if last else 0,
        wall_time_s=wall_time_s,
        final=None,
        last=last,
        test_error=DIVERGED_ERROR,
        best_test_acc=max(
            (r["test_acc"] for r in rows if isinstance(r.get("test_acc"), (int, float))),
            default=None,
        ),
        eval_split="val" if config.validation else "test",
        message=message,
        traceback=tb,
    )
    write_result(run_dir, result)
    return result
