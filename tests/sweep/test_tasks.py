"""run_task in this process, with the trainer replaced: failures, usage errors, skips, retries."""

from __future__ import annotations

import json

import pytest

from scalefree.errors import UsageError
from scalefree.rundir import CONFIG_FILE, DIVERGED_ERROR, RESULT_FILE, load_run
from scalefree.sweep import tasks
from scalefree.sweep.locking import RunLock
from scalefree.sweep.tasks import FAILED_RESULT_KEPT, RunTask, precheck, run_task
from scalefree.train import trainer
from scalefree.train.config import RunConfig


@pytest.fixture
def config(tmp_path) -> RunConfig:
    return RunConfig(log_folder=str(tmp_path), dataset="synthetic", train_epochs=1, max_steps=1)


def fake_train(calls: list, error: BaseException | None = None, status: str = "completed"):
    def train(config, *, resume=False, data=None, run_locked=False):
        assert run_locked  # run_task holds the run's lock
        calls.append((config.run_name(), resume))
        if error is not None:
            raise error
        run_dir = tasks.run_dir_of(config)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / CONFIG_FILE).write_text(json.dumps(config.to_dict()))
        result = {"status": status, "test_error": 0.25 if status == "completed" else None}
        (run_dir / RESULT_FILE).write_text(json.dumps(result))
        return trainer.RunOutcome(run_dir, result)

    return train


def test_a_crash_is_recorded_as_failed_atomically(config, monkeypatch):
    calls: list = []
    monkeypatch.setattr(trainer, "train", fake_train(calls, RuntimeError("CUDA out of memory")))
    res = run_task(RunTask(config))
    assert calls == [(config.run_name(), True)]  # always resume=True
    assert res.status == "failed" and res.message == "RuntimeError: CUDA out of memory"
    run = load_run(tasks.run_dir_of(config))  # config.json written too, so readers see the run
    assert run.status == "failed" and run.test_error == DIVERGED_ERROR
    assert run.result["message"] == "RuntimeError: CUDA out of memory"
    assert "Traceback" in run.result["traceback"]
    assert not list(tasks.run_dir_of(config).glob(".*.tmp"))  # atomic: no temp file left


def test_a_usage_error_writes_nothing(config, monkeypatch):
    monkeypatch.setattr(trainer, "train", fake_train([], UsageError("--amsgrad does not apply")))
    res = run_task(RunTask(config))
    assert res.status == "error" and "--amsgrad" in res.message
    assert not (tasks.run_dir_of(config) / RESULT_FILE).exists()


def test_keyboard_interrupt_is_not_a_failure(config, monkeypatch):
    monkeypatch.setattr(trainer, "train", fake_train([], KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        run_task(RunTask(config))
    assert not (tasks.run_dir_of(config) / RESULT_FILE).exists()
    assert RunLock(tasks.run_dir_of(config)).acquire()  # and the lock was released


def test_finished_runs_are_skipped_and_failed_ones_retried_only_on_request(config, monkeypatch):
    calls: list = []
    monkeypatch.setattr(trainer, "train", fake_train(calls, RuntimeError("boom")))
    assert run_task(RunTask(config)).status == "failed"
    monkeypatch.setattr(trainer, "train", fake_train(calls))
    for check in (precheck, run_task):  # the launcher's check and the worker's agree
        res = check(RunTask(config))
        assert res.status == "skipped" and res.previous == "failed"
    assert len(calls) == 1
    assert precheck(RunTask(config, retry_failed=True)) is None
    res = run_task(RunTask(config, retry_failed=True))
    assert res.status == "completed" and res.test_error == 0.25 and len(calls) == 2
    kept = tasks.run_dir_of(config) / FAILED_RESULT_KEPT
    assert json.loads(kept.read_text())["message"] == "RuntimeError: boom"


def test_diverged_runs_are_not_retried(config, monkeypatch):
    calls: list = []
    monkeypatch.setattr(trainer, "train", fake_train(calls, status="diverged"))
    assert run_task(RunTask(config)).status == "diverged"
    res = run_task(RunTask(config, retry_failed=True))
    assert res.status == "skipped" and res.previous == "diverged" and len(calls) == 1


def test_a_locked_run_is_running_elsewhere(config, monkeypatch):
    calls: list = []
    monkeypatch.setattr(trainer, "train", fake_train(calls))
    lock = RunLock(tasks.run_dir_of(config))
    assert lock.acquire()
    try:
        assert precheck(RunTask(config)).status == "running_elsewhere"
        res = run_task(RunTask(config))
        assert res.status == "running_elsewhere" and "pid" in res.message
    finally:
        lock.release()
    assert calls == []
    assert run_task(RunTask(config)).status == "completed"
