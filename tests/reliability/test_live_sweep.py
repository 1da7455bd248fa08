"""`report` and `plot` on a sweep that other processes are writing right now (issue 22, item 3):
no crash, whole figures only, and the runs not finished yet counted as incomplete, each said to be
running (its lock is held) or stopped.

The writers' state is staged as they leave it between two writes: a run with its lock held, no
result.json and half a metrics line; the temporary files of writes in flight (result.json,
config.json and a statistics file); a run folder a launcher has just claimed (only its lock).
"""

from __future__ import annotations

import zlib

import pytest

from scalefree.cli import main
from scalefree.locking import RunLock
from scalefree.rundir import METRICS_FILE, RESULT_FILE, load_runs, read_metrics
from tests.fakeruns import make_grid

STOPPED = ("AdamL2", 1e-2)  # interrupted: no result, no lock; AdamW 1e-2 is the running one


@pytest.fixture
def live(tmp_path):
    root = tmp_path / "logs"

    def error(m, e, w, s):
        return "incomplete" if (m, e) == STOPPED else 0.1 + e

    paths = make_grid(root, ["AdamL2", "AdamW"], [1e-3, 1e-2], [0.0], [0], error, epochs=3)
    running = paths[3]
    (running / RESULT_FILE).unlink()
    rows = len(read_metrics(running))
    with open(running / METRICS_FILE, "a") as f:
        f.write('{"epoch": 4, "train_lo')  # a line being appended
    (running / f".{RESULT_FILE}.k2j3.tmp").write_text('{"status": "compl')
    (running / ".config.json.x9.tmp").write_text("{")
    (running / "stats" / ".epoch_0004.npz.a1.tmp").write_bytes(b"PK\x03\x04")
    claimed = root / "claimed_by_a_launcher"
    claimed.mkdir()
    locks = [RunLock(running), RunLock(claimed)]
    assert all(lock.acquire(timeout=0) for lock in locks)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != ".lock"}
    yield root, paths, rows
    for lock in locks:
        lock.release()
    after = {p: p.read_bytes() for p in before}
    assert after == before  # readers changed nothing


def test_report_counts_the_unfinished_runs_and_says_which_are_running(live, tmp_path, capsys):
    root, paths, rows = live
    runs = {r.path: r for r in load_runs(root)}
    assert len(runs) == 4 and runs[paths[3]].status == "incomplete"
    assert len(runs[paths[3]].metrics) == rows  # the half-written line is not a row
    out = tmp_path / "r"
    assert main(["report", str(root), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    table = md[md.index("| completed | diverged | failed | incomplete |") :].splitlines()
    assert table[2] == "| 2 | 0 | 0 | 2 |"
    assert f"| {paths[3].name} | incomplete | running (" in md
    assert f"| {paths[1].name} | incomplete | not running (stopped) |" in md
    assert "(1 running)" in md and "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["heatmap", "curves", "histogram"])
def test_plots_of_a_live_sweep_are_whole_figures(live, tmp_path, kind):
    root, _, _ = live
    out = tmp_path / f"{kind}.png"
    assert main(["plot", kind, str(root), "--out", str(out)]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[-8:-4] == b"IEND"
    assert zlib.crc32(data[-8:-4]) == int.from_bytes(data[-4:], "big")  # the file is complete
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]
