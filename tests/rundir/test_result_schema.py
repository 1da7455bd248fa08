"""result.json has one typed definition (rundir.layout.RunResult), one per status; what the writers
write validates against it, and what does not match is named."""

from __future__ import annotations

import json
import math

import pytest

from scalefree.rundir import layout, read_result
from scalefree.rundir.layout import (
    RESULT_TYPES,
    STATUSES,
    CompletedResult,
    DivergedResult,
    FailedResult,
    read_problem,
    result_problem,
)
from scalefree.rundir.write import record_failure, run_result, write_result
from scalefree.train.trainer import train
from tests.helpers import tiny_run

ROW = {"epoch": 2, "step": 8, "train_loss": 2.1, "train_acc": 0.2, "test_loss": 2.2,
       "test_acc": 0.25, "lr": 1e-3, "wall_time_s": 1.5}  # fmt: skip


def _on_disk(run_dir):
    return json.loads((run_dir / layout.RESULT_FILE).read_text())


def test_every_status_has_one_definition_and_the_readers_know_the_same_statuses():
    assert STATUSES == ("completed", "diverged", "failed")
    assert RESULT_TYPES == {
        "completed": CompletedResult,
        "diverged": DivergedResult,
        "failed": FailedResult,
    }
    common = {"epochs_completed", "steps", "wall_time_s", "final", "last_evaluation",
              "test_error", "best_test_acc", "eval_split", "message", "status"}  # fmt: skip
    keys = {s: set(t.__required_keys__) for s, t in RESULT_TYPES.items()}
    assert keys["completed"] == keys["diverged"] == common | {"divergence", "test_split"}
    assert keys["failed"] == common | {"traceback"}


def test_trainer_results_of_every_status_validate(tmp_path):
    """Real runs: a completed one (with --validation, so test_split is filled) and a diverged one;
    the file on disk is what is checked."""
    done = train(tiny_run(tmp_path, sizes=(64, 32), train_epochs=1, validation=True))
    on_disk = _on_disk(done.run_dir)
    assert on_disk["status"] == "completed" and on_disk == done.result
    assert result_problem(on_disk) is None
    assert math.isclose(on_disk["test_error"], 1 - on_disk["final"]["test_acc"])
    assert set(on_disk["test_split"]) == {"loss", "acc", "error"}

    diverged = train(
        tiny_run(tmp_path, sizes=(64, 32), optim_method="SGD", eta0=1e6, weight_decay=0.0)
    )
    on_disk = _on_disk(diverged.run_dir)
    assert on_disk["status"] == "diverged" and result_problem(on_disk) is None
    assert on_disk["divergence"]["reason"] in ("non-finite", "factor")


def test_failed_results_validate_with_and_without_metrics(tmp_path):
    config = tiny_run(tmp_path)
    run_dir = layout.run_dir_of(config)
    result = record_failure(config, "RuntimeError: boom", 1.23456, "Traceback ...")
    assert result_problem(result) is None and _on_disk(run_dir) == result
    assert result["test_error"] == layout.DIVERGED_ERROR and result["wall_time_s"] == 1.235
    (run_dir / layout.METRICS_FILE).write_text(json.dumps(ROW) + "\n")
    result = record_failure(config, "RuntimeError: boom", 2.0)
    assert result_problem(result) is None
    assert (result["epochs_completed"], result["steps"], result["best_test_acc"]) == (2, 8, 0.25)
    assert read_result(run_dir) == result


def test_both_divergence_shapes_validate():
    factor = {"reason": "factor", "loss": 9e3, "reference_loss": 2.3, "factor": 1e3,
              "epoch": 1, "step": 40}  # fmt: skip
    nonfinite = {"reason": "non-finite", "loss": None, "epoch": 1, "step": 3}
    for divergence in (factor, nonfinite):
        r = run_result("diverged", epochs_completed=1, steps=3, wall_time_s=0.5, last=ROW,
                       best_test_acc=0.25, eval_split="test", message="loss blew up",
                       divergence=divergence)  # fmt: skip
        assert result_problem(r) is None


def _completed(**changes):
    r = run_result("completed", epochs_completed=2, steps=8, wall_time_s=3.0, last=ROW,
                   best_test_acc=0.25, eval_split="test")  # fmt: skip
    return {**r, **changes}


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"status": "finished"}, "'status' is 'finished', not one of completed, diverged, failed"),
        ({"test_error": None}, "a completed result's 'test_error' is None, not float"),
        ({"steps": True}, "a completed result's 'steps' is True, not int"),
        ({"eval_split": "train"}, "'eval_split' is 'train', not 'test' or 'val'"),
        ({"traceback": "x"}, "a completed result has unknown key(s) 'traceback'"),
        ({"divergence": {"reason": "factor"}}, "'divergence' is {'reason': 'factor'}, not null"),
        ({"test_split": {"loss": 1.0, "acc": 0.5}}, "'test_split' is {'loss': 1.0, 'acc': 0.5}"),
    ],
)
def test_what_does_not_match_is_named(changes, problem):
    assert problem in result_problem(_completed(**changes))


def test_a_missing_key_is_named_and_the_writer_refuses_it(tmp_path):
    r = _completed()
    del r["test_split"]
    assert result_problem(r) == "a completed result lacks 'test_split'"
    with pytest.raises(ValueError, match="lacks 'test_split'"):
        write_result(tmp_path, r)
    assert not (tmp_path / layout.RESULT_FILE).exists()
    diverged = {**r, "status": "diverged", "final": None, "test_error": None, "test_split": None}
    assert "'divergence' is None" in result_problem(diverged)  # a diverged run says why


def test_readers_require_less_than_the_writer_promises():
    """A result of an older version, without the keys added since, still marks its run finished;
    a status or a completed test_error the tables cannot use makes it damaged."""
    old = _completed()
    del old["test_split"], old["divergence"]
    assert result_problem(old) is not None and read_problem(old) is None
    assert read_problem(_completed(status="done")) is not None
    assert read_problem(_completed(test_error="0.3")) == (
        "a completed result whose 'test_error' is '0.3', not a finite number"
    )
    assert "not a finite number" in read_problem(_completed(test_error=float("nan")))
    # a run recorded from another loop that logged no accuracy says so, and is read (unranked)
    unknown = _completed(test_error=float("nan"), test_error_of="none")
    assert read_problem(unknown) is None and result_problem(unknown) is None
    assert read_problem(_completed(test_error=float("nan"), test_error_of="1 - val_acc"))
