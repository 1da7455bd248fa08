"""One damaged file never stops `report` or `plot`: the run is named with its file and problem and
left out (or counted incomplete), and the rest goes on (issue 10, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalefree.cli import main
from scalefree.rundir import CONFIG_FILE, METRICS_FILE, RESULT_FILE, load_runs
from tests.fakeruns import make_grid

ETA0S, WDS = (1e-3, 1e-2), (0.0, 1e-4)


@pytest.fixture
def damaged(tmp_path) -> tuple[Path, dict[str, Path]]:
    """A 2 x 2 x 2-method fake sweep with one damaged file of each kind in four of its runs."""
    root = tmp_path / "logs"

    def error(method, eta0, wd, seed):
        return 0.1 + eta0 + wd + (0.05 if method == "AdamL2" else 0.0)

    paths = make_grid(root, ["AdamL2", "AdamW"], ETA0S, WDS, [0], error, epochs=3)
    runs = {
        "truncated result": paths[0],
        "list result": paths[1],
        "truncated config": paths[2],
        "non-object metrics line": paths[4],  # an AdamW run: curves read its metrics
    }
    text = (paths[0] / RESULT_FILE).read_text()
    (paths[0] / RESULT_FILE).write_text(text[: len(text) // 2])
    (paths[1] / RESULT_FILE).write_text("[]")
    text = (paths[2] / CONFIG_FILE).read_text()
    (paths[2] / CONFIG_FILE).write_text(text[: len(text) // 3])
    for p in paths[4:]:  # the best AdamW run is among these; every AdamW metrics file is hit
        lines = (p / METRICS_FILE).read_text().splitlines()
        lines.insert(1, json.dumps([1, 2, 3]))
        lines.insert(2, json.dumps({"epoch": 2, "train_loss": "high"}))
        (p / METRICS_FILE).write_text("\n".join(lines) + "\n")
    return root, runs


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name in (CONFIG_FILE, RESULT_FILE, METRICS_FILE)
    }


def test_load_runs_names_each_damaged_file_and_keeps_the_rest(damaged, capsys):
    root, runs = damaged
    notes: list[str] = []
    loaded = {r.path: r for r in load_runs(root, notes)}
    assert len(loaded) == 7 and runs["truncated config"] not in loaded
    assert notes == [f"{runs['truncated config'] / CONFIG_FILE}: " + notes[0].split(": ", 1)[1]]
    assert "not valid JSON" in notes[0]
    assert loaded[runs["truncated result"]].status == "incomplete"
    assert "holds a JSON list, not an object" in loaded[runs["list result"]].problem
    rows = loaded[runs["non-object metrics line"]].metrics
    assert [r["epoch"] for r in rows] == [1, 2, 3]  # both bad lines skipped, no row lost
    err = capsys.readouterr().err
    assert str(runs["truncated result"] / RESULT_FILE) in err


def test_report_goes_on_and_notes_every_damaged_run(damaged, tmp_path, capsys):
    root, runs = damaged
    before = _snapshot(root)
    assert main(["report", str(root), "--out", str(tmp_path / "report")]) == 0
    md = (tmp_path / "report" / "report.md").read_text()
    assert "Left out (damaged files)" in md and str(runs["truncated config"] / CONFIG_FILE) in md
    assert str(runs["truncated result"] / RESULT_FILE) in md  # in the incomplete-runs table
    assert _snapshot(root) == before  # nothing rewritten or deleted


@pytest.mark.parametrize("kind", ["curves", "heatmap"])
def test_plots_go_on(damaged, tmp_path, capsys, kind):
    root, runs = damaged
    out = tmp_path / f"{kind}.png"
    assert main(["plot", kind, str(root), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    err = capsys.readouterr().err
    assert str(runs["truncated config"] / CONFIG_FILE) in err and "Traceback" not in err
