"""Crafted statistics and JSON files: `plot` and `report` name the file and go on with the rest;
nothing hangs, nothing is read whole when it is larger than any file of ours (issue 22, item 1).

Statistics files are checked against their format before any data is read: no object arrays (no
pickle), a declared shape must match the bytes the file holds, dtypes and keys must be ours. JSON
readers refuse files above their cap unread, and nesting too deep for the parser.
"""

from __future__ import annotations

import io
import json
import os
import signal
import tracemalloc
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from scalefree.cli import main
from scalefree.locking import holder, is_locked
from scalefree.rundir import CONFIG_FILE, METRICS_FILE, RESULT_FILE, load_runs, read_metrics_file
from scalefree.rundir.read import MAX_JSON_BYTES, DamagedFile, read_json_object
from scalefree.train.stats import NoStatistics, load_stats, read_stats_file
from tests.fakeruns import make_grid


@contextmanager
def deadline(seconds: int):
    """Fail instead of hanging (a reader blocked on a FIFO would block the test forever)."""

    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def grid(root: Path) -> list[Path]:
    """AdamL2 and AdamW, 2 eta0 x 1 wd, 3 epochs with statistics: the first run of each method
    is its best (lowest error), the one whose statistics the histogram figure reads."""
    return make_grid(
        root, ["AdamL2", "AdamW"], [1e-3, 1e-2], [0.0], [0], lambda m, e, w, s: 0.1 + e, epochs=3
    )


def savez(path: Path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())


def huge_declared_shape(path: Path) -> None:
    """The real file with the header of ``counts`` claiming 10^12 x 4 x 7 x 28 int32 (~3 PB)."""
    arrays = dict(np.load(path))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a)
            data = buf.getvalue()
            if name == "counts":
                head = io.BytesIO()
                shape = (10**12, *a.shape[1:])
                np.lib.format.write_array_header_1_0(
                    head, {"descr": "<i4", "fortran_order": False, "shape": shape}
                )
                data = head.getvalue() + a.tobytes()
            z.writestr(f"{name}.npy", data)
    path.write_bytes(out.getvalue())


def _object_array(p: Path) -> None:
    savez(p, **(dict(np.load(p)) | {"epoch": np.array([1, "x", None], dtype=object)}))


def _float_counts(p: Path) -> None:
    a = dict(np.load(p))
    savez(p, **(a | {"counts": a["counts"].astype(np.float64) + 0.5}))


def _missing_key(p: Path) -> None:
    a = dict(np.load(p))
    del a["counts"]
    savez(p, **a)


def _counts_not_matching_layers(p: Path) -> None:
    a = dict(np.load(p))
    savez(p, **(a | {"counts": a["counts"][:, :, :2]}))


def _negative_counts(p: Path) -> None:
    a = dict(np.load(p))
    savez(p, **(a | {"counts": -a["counts"] - 1}))


def _not_a_zip(p: Path) -> None:
    p.write_bytes(b"PK\x03\x04 torn")


CRAFTED = {
    "object array": (_object_array, "'epoch' is a 1-d object array, not 1-d integer"),
    "huge declared shape": (
        huge_declared_shape,
        "'counts' declares shape (1000000000000, 4, 7, 28)",
    ),
    "wrong dtype": (_float_counts, "'counts' is a 4-d float64 array, not 4-d integer"),
    "missing key": (_missing_key, "no 'counts' array"),
    "shape mismatch": (_counts_not_matching_layers, "counts of shape (2, 4, 2, 28) do not match"),
    "negative counts": (_negative_counts, "negative counts"),
    "not a zip": (_not_a_zip, "not a readable statistics file"),
}


@pytest.mark.parametrize("kind", CRAFTED)
def test_a_crafted_statistics_file_is_named_and_the_other_epochs_are_kept(tmp_path, capsys, kind):
    run = grid(tmp_path / "logs")[0]
    files = sorted((run / "stats").glob("epoch_*.npz"))
    good = load_stats(run)
    craft, problem = CRAFTED[kind]
    craft(files[0])
    tracemalloc.start()
    with pytest.raises(DamagedFile, match="epoch_0001.npz") as exc:
        read_stats_file(files[0])
    stats = load_stats(run)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert problem in str(exc.value)
    assert peak < 50 * 2**20  # nothing near the declared size was allocated
    assert set(stats.epoch.tolist()) == set(good.epoch.tolist()) - {1}
    keep = good.epoch != 1
    assert np.array_equal(stats.counts, good.counts[keep])  # the rest read unchanged
    assert f"{files[0]}: {problem}" in capsys.readouterr().err


def test_no_readable_statistics_is_no_statistics(tmp_path):
    run = grid(tmp_path / "logs")[0]
    for f in (run / "stats").glob("epoch_*.npz"):
        _object_array(f)
    with pytest.raises(NoStatistics, match="no readable update statistics"):
        load_stats(run)
    assert issubclass(NoStatistics, FileNotFoundError)  # what the figures skip a run on


def test_histogram_and_report_go_on_past_crafted_statistics(tmp_path, capsys):
    root = tmp_path / "logs"
    paths = grid(root)
    best_l2 = paths[0]
    for f in sorted((best_l2 / "stats").glob("epoch_*.npz"))[:2]:
        huge_declared_shape(f)
    _object_array(sorted((paths[2] / "stats").glob("epoch_*.npz"))[0])  # AdamW's best
    out = tmp_path / "h.png"
    assert main(["plot", "histogram", str(root), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    err = capsys.readouterr().err
    assert "epoch_0001.npz: 'counts' declares shape" in err and "epoch_0002.npz" in err
    assert "'epoch' is a 1-d object array" in err and "Traceback" not in err
    assert main(["report", str(root), "--out", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "histogram.png" in md and "Not drawn" not in md


# ------------------------------------------------------------------------------------ JSON


def _edit(path: Path, **changes) -> None:
    obj = json.loads(path.read_text())
    path.write_text(json.dumps(obj | changes))


def test_json_with_huge_numbers_nan_and_deep_nesting_is_named(tmp_path, capsys):
    root = tmp_path / "logs"
    paths = grid(root)
    # 1e400 parses as inf; NaN as nan: no run was trained with them, no result holds them
    text = (paths[0] / CONFIG_FILE).read_text().replace('"eta0": 0.001', '"eta0": 1e400')
    (paths[0] / CONFIG_FILE).write_text(text)
    _edit(paths[1] / RESULT_FILE, test_error=float("nan"))
    (paths[2] / CONFIG_FILE).write_text("[" * 100_000 + "]" * 100_000)
    rows = (paths[3] / METRICS_FILE).read_text().splitlines()
    rows.insert(1, '{"epoch": ' + "[" * 100_000)
    (paths[3] / METRICS_FILE).write_text("\n".join(rows) + "\n")
    notes: list[str] = []
    runs = {r.path: r for r in load_runs(root, notes)}
    assert sorted(runs) == [paths[1], paths[3]]
    assert f"{paths[0] / CONFIG_FILE}: 'eta0' is missing or not a finite number" in notes[0]
    assert f"{paths[2] / CONFIG_FILE}: JSON nested too deeply" in notes[1]
    assert runs[paths[1]].status == "incomplete" and "'test_error' is nan" in runs[paths[1]].problem
    parsed = read_metrics_file(paths[3])
    assert parsed.damaged == [(2, "JSON nested too deeply")] and len(parsed.rows) == 3
    capsys.readouterr()
    for argv in (["report", str(root)], ["plot", "curves", str(root), "--out", str(tmp_path)]):
        assert main(argv) == 0
        err = capsys.readouterr().err
        assert "nested too deeply" in err and "Traceback" not in err


def test_oversized_json_is_refused_unread(tmp_path):
    big = tmp_path / "result.json"
    big.write_text(json.dumps({"status": "failed", "message": "x" * 50_000_000}))
    with pytest.raises(DamagedFile, match="too large to be one of ours"):
        read_json_object(big)
    huge = tmp_path / "config.json"  # 1 GB, sparse: refused from its size, never read
    with open(huge, "wb") as f:
        f.truncate(2**30)
    tracemalloc.start()
    with pytest.raises(DamagedFile, match=f"{2**30} bytes, above the {MAX_JSON_BYTES}-byte"):
        read_json_object(huge)
    metrics = tmp_path / METRICS_FILE
    os.link(huge, metrics)
    with pytest.raises(DamagedFile, match="too large"):
        read_metrics_file(tmp_path)
    assert tracemalloc.get_traced_memory()[1] < 2**20
    tracemalloc.stop()


def test_an_oversized_metrics_file_leaves_only_that_runs_curve_out(tmp_path, capsys):
    root = tmp_path / "logs"
    paths = grid(root)
    with open(paths[0] / METRICS_FILE, "r+b") as f:  # AdamL2's best run
        f.truncate(2**30)
    out = tmp_path / "c.png"
    assert main(["plot", "curves", str(root), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert f"{paths[0] / METRICS_FILE}: too large" in capsys.readouterr().err


def test_fifos_planted_as_run_files_never_block_a_reader(tmp_path, capsys):
    root = tmp_path / "logs"
    paths = grid(root)
    (paths[0] / CONFIG_FILE).unlink()
    os.mkfifo(paths[0] / CONFIG_FILE)
    (paths[1] / RESULT_FILE).unlink()
    os.mkfifo(paths[1] / RESULT_FILE)
    os.mkfifo(paths[1] / ".lock")
    stats = sorted((paths[2] / "stats").glob("epoch_*.npz"))
    stats[0].unlink()
    os.mkfifo(stats[0])
    with deadline(60):
        with pytest.raises(DamagedFile, match="not a regular file"):
            read_json_object(paths[0] / CONFIG_FILE)
        assert not is_locked(paths[1]) and holder(paths[1]) is None
        assert load_stats(paths[2]).epoch.min() == 2
        assert main(["report", str(root), "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert f"{paths[1] / RESULT_FILE}: cannot be read" not in err  # named as what it is:
    assert f"{paths[1] / RESULT_FILE}: not a regular file" in err


def test_crafted_diagnose_files_are_named_and_left_out(tmp_path, capsys):
    from scalefree.plots.diagnose import run_diagnoses
    from scalefree.reproduce.depth_study import diagnosis_spread
    from scalefree.rundir.layout import diagnose_file

    root = tmp_path / "logs"
    paths = grid(root)
    diagnose_file(paths[0], "init").write_text("[" * 100_000)
    diagnose_file(paths[1], "init").write_text('{"diagnosis": {"spread": 1e400}}')
    with open(diagnose_file(paths[2], "init"), "wb") as f:
        f.truncate(2**30)
    assert run_diagnoses(load_runs(root)) == []
    err = capsys.readouterr().err
    assert f"{diagnose_file(paths[0], 'init')}: JSON nested too deeply" in err
    assert f"{diagnose_file(paths[1], 'init')}: no diagnosis.per_tensor" in err
    assert f"{diagnose_file(paths[2], 'init')}: too large" in err
    assert all(np.isnan(diagnosis_spread(p, "init")) for p in (paths[0], paths[2]))
    assert main(["report", str(root), "--out", str(tmp_path / "r")]) == 0
