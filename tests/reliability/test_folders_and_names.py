"""Log folders that cannot be written, and folder names with spaces, newlines and bytes that are not
UTF-8: a one-line error (exit 2) or correct behaviour, never a traceback (issue 22, item 2).

Root ignores permission bits, so the read-only cases run for real only as another user; as root
they are simulated (the write the real case would fail raises PermissionError).
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest

from scalefree.cli import main
from scalefree.rundir import RESULT_FILE
from tests.fakeruns import make_grid
from tests.reliability.test_files_are_data import run

AS_ROOT = os.geteuid() == 0


def one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


def fake_logs(root: Path) -> Path:
    make_grid(root, ["AdamW"], [1e-3], [0.0], [0], lambda *a: 0.1, epochs=2, with_stats=False)
    return root


def test_a_log_folder_that_is_a_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "logs"
    blocker.write_text("a file\n")
    assert run(blocker) == 2
    one_line_error(capsys, f"cannot write to the log folder {blocker}", "--log-folder")
    assert blocker.read_text() == "a file\n"
    assert main(["report", str(blocker)]) == 2
    one_line_error(capsys, f"log folder {blocker} does not exist")


@pytest.mark.skipif(AS_ROOT, reason="root writes into read-only folders; see the simulated case")
def test_a_read_only_log_folder_is_one_line(tmp_path, capsys):
    logs = fake_logs(tmp_path / "logs")
    before = sorted(p.name for p in logs.iterdir())
    logs.chmod(0o555)
    try:
        assert run(logs) == 2
        one_line_error(capsys, "cannot write to the log folder", "--log-folder")
        assert main(["report", str(logs)]) == 2
        one_line_error(capsys, str(logs / "report"), "Permission denied", "--out")
        assert sorted(p.name for p in logs.iterdir()) == before
    finally:
        logs.chmod(0o755)


def test_a_read_only_log_folder_simulated(tmp_path, capsys, monkeypatch):
    """The same as root: creating a folder or file inside the log folder fails as it would."""
    logs = fake_logs(tmp_path / "logs")
    before = sorted(p.name for p in logs.rglob("*"))
    real_mkdir, real_mkstemp, real_mkdtemp = os.mkdir, tempfile.mkstemp, tempfile.mkdtemp

    def inside(path) -> bool:
        return path is not None and Path(os.fsdecode(path)).parent == logs

    def guard(real):
        def denied(*args, **kwargs):
            where = kwargs.get("dir") or (args[0] if real is real_mkdir else None)
            if inside(where if real is real_mkdir else Path(where or "") / "x"):
                raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(where))
            return real(*args, **kwargs)

        return denied

    monkeypatch.setattr(os, "mkdir", guard(real_mkdir))
    monkeypatch.setattr(tempfile, "mkstemp", guard(real_mkstemp))
    monkeypatch.setattr(tempfile, "mkdtemp", guard(real_mkdtemp))
    assert run(logs) == 2
    one_line_error(capsys, "cannot write to the log folder", "Permission denied", "--log-folder")
    assert main(["report", str(logs)]) == 2
    one_line_error(capsys, str(logs / "report"), "Permission denied", "pass --out")
    assert sorted(p.name for p in logs.rglob("*")) == before  # nothing written


def test_outputs_under_a_file_are_one_line(tmp_path, capsys):
    logs = fake_logs(tmp_path / "logs")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["report", str(logs), "--out", str(blocker)]) == 2
    one_line_error(capsys, str(blocker), "--out")
    assert main(["plot", "heatmap", str(logs), "--out", str(blocker / "h.png")]) == 2
    one_line_error(capsys, str(blocker), "a file is in the way of a folder", "--out")
    assert blocker.read_text() == "x"


def test_spaces_newlines_and_non_utf8_bytes_in_folder_names_work(tmp_path, capsys):
    logs = tmp_path / ("logs with space\nnewline " + os.fsdecode(b"\xff\xfe"))
    assert run(logs, epochs=1) == 0
    (d,) = [p for p in logs.iterdir() if p.name != "initial_weights"]
    assert (d / RESULT_FILE).is_file()
    capsys.readouterr()
    assert main(["report", str(logs)]) == 0
    assert main(["plot", "curves", str(logs), "--out", str(logs / "c.png")]) == 0
    assert "Traceback" not in capsys.readouterr().err
    md = (logs / "report" / "report.md").read_text(encoding="utf-8")  # valid UTF-8
    title = md.splitlines()[0]
    assert title == f"# scalefree report: {tmp_path}/logs with space\\nnewline \\udcff\\udcfe"
    assert "\\udcff" in (logs / "report" / "report.html").read_text(encoding="utf-8")
    assert (logs / "c.png").read_bytes()[:4] == b"\x89PNG"
