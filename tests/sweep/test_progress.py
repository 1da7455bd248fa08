"""A sweep's progress lines: a header naming the columns, or a bar, or only the summary."""

from __future__ import annotations

import io

import pytest

from scalefree.cli import main
from scalefree.sweep.grid import make_sweep
from scalefree.sweep.progress import SweepProgress, progress_header
from scalefree.sweep.runner import run_sweeps
from scalefree.train.config import RunConfig
from tests.sweep.conftest import FakeExecutor


def run(tmp_path, progress: str) -> list[str]:
    base = RunConfig(log_folder=str(tmp_path), model="ResNet20", batch_norm=False, train_epochs=3)
    sweep = make_sweep(base, ["AdamW"], [1e-4, 1e-3], [0.0, 1e-4, 1e-3, 5e-3, 1e-2], [0])
    out = io.StringIO()
    run_sweeps(
        [sweep], FakeExecutor(lambda m, e, w, s: 0.1 + e), out=out, err=out, progress=progress
    )
    return out.getvalue().splitlines()


def test_plain_lines_come_under_a_header_naming_the_columns(tmp_path) -> None:
    lines = run(tmp_path, "plain")
    rows = [i for i, line in enumerate(lines) if line.startswith("[")]
    assert len(rows) == 10
    header = lines[rows[0] - 1]
    assert header == progress_header(10) and header.split() == [
        "run", "status", "test_error", "time", "name",
    ]  # fmt: skip
    first = lines[rows[0]]
    assert first.startswith("[ 1/10] completed")
    # Each value ends under the end of its column name.
    for column, value in (("test_error", "0.1001"), ("time", "s")):
        end = header.index(column) + len(column)
        assert first[:end].rstrip().endswith(value) and first[end] == " "
    assert lines[-1].startswith("sweep done: 10 runs; ran 10 completed")


def test_none_shows_only_the_summary(tmp_path) -> None:
    lines = run(tmp_path, "none")
    assert not [line for line in lines if line.startswith("[") or line.startswith("run ")]
    assert lines[-1].startswith("sweep done: 10 runs; ran 10 completed")


def test_bar_writes_the_lines_through_the_bar(monkeypatch, capsys) -> None:
    said: list[str] = []
    display = SweepProgress("bar", 2, said.append)
    display.result("[1/2] completed")
    display.result("[2/2] completed")
    display.close()
    err = capsys.readouterr()
    assert said == []  # written above the bar (tqdm.write), not through info
    assert "[1/2] completed" in err.out and progress_header(2) in err.out


def test_sweep_cli_accepts_progress_and_shows_the_defaults(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--progress {auto,bar,plain,none}" in text and "(default: auto)" in text
    assert "Section 4; default: off)" in text
