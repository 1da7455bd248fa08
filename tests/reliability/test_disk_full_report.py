"""A full disk while `report` or `plot` writes: the previous report (every file of it) and the
previous figure stay as they were, and the error is one line (issue 22, item 6).

ENOSPC is raised in-process by the n-th fsync of a file being written (scalefree.io fsyncs every
file before its rename), which is where a real full disk fails a write at the latest. A report is
written into a hidden folder inside its output folder and moved in only when all of it is written.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import scalefree.io
from scalefree.cli import main
from tests.fakeruns import make_grid


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def fail_fsync_number(monkeypatch, n: int) -> list[int]:
    """Make the n-th fsync (1-based) from scalefree.io raise ENOSPC; returns the call counter."""
    calls = [0]
    real = os.fsync

    def fsync(fd):
        calls[0] += 1
        if calls[0] == n:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(scalefree.io.os, "fsync", fsync)
    return calls


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("full") / "logs"
    make_grid(root, ["AdamL2", "AdamW"], [1e-3, 1e-2], [0.0], [0], lambda m, e, w, s: 0.1 + e)
    return root


def test_a_full_disk_leaves_the_previous_report_whole(logs, tmp_path, monkeypatch, capsys):
    out = tmp_path / "report"
    calls = fail_fsync_number(monkeypatch, 0)  # count the writes of a whole report
    assert main(["report", str(logs), "--out", str(out)]) == 0
    writes = calls[0]
    assert writes >= 6  # report.md, report.html, 3 tables, figures
    (out / "report.md").write_text("the previous report\n")  # recognisable old content
    previous = snapshot(out)
    capsys.readouterr()
    for n in (2, writes - 1):  # a table; report.md, written after every figure
        fail_fsync_number(monkeypatch, n)
        assert main(["report", str(logs), "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert err.startswith(f"scalefree report: the disk is full: writing {out}/")
        assert ".staging" not in err and "Free some space" in err
        assert snapshot(out) == previous  # not one file of the previous report changed
        assert sorted(p.name for p in out.iterdir()) == sorted(
            p.name for p in out.iterdir() if not p.name.startswith(".")
        )  # no staging folder or temporary file left


def test_a_full_disk_leaves_the_previous_figure(logs, tmp_path, monkeypatch, capsys):
    out = tmp_path / "heatmap.png"
    assert main(["plot", "heatmap", str(logs), "--out", str(out)]) == 0
    previous = out.read_bytes()
    capsys.readouterr()
    fail_fsync_number(monkeypatch, 1)
    assert main(["plot", "heatmap", str(logs), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"scalefree plot: the disk is full: writing {out} failed (No space left on device); "
        "what was written before is unchanged. Free some space and run the command again\n"
    )
    assert out.read_bytes() == previous and sorted(p.name for p in tmp_path.iterdir()) == [
        "heatmap.png"
    ]
