"""The report: every table and figure the runs allow, notes for what they do not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scalefree.errors import UsageError
from scalefree.plots.report import write_report, write_report_files
from tests.fakeruns import make_run


def images(text: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)


@pytest.fixture(scope="module")
def depth_report(depth_study: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("report")
    return out, write_report_files(depth_study, out)


def test_report_has_every_table_and_figure(depth_report) -> None:
    out, files = depth_report
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for name in ("summary.csv", "best.csv", "summary.md"):
        assert (out / name).is_file() and f"]({name})" in md and f'href="{name}"' in html
    srcs = images(md)
    expected = (
        ["figures/correlation.png"]
        + [
            f"figures/CIFAR10_{model}_NoBN_{kind}.png"
            for model in ("ResNet20", "ResNet56", "ResNet110")
            for kind in ("heatmap", "curves", "histogram")
        ]
        + ["figures/CIFAR10_ResNet20_heatmap.png", "figures/CIFAR10_ResNet20_curves.png"]
    )
    assert sorted(srcs) == sorted(expected)
    for src in srcs:
        assert (out / src).read_bytes()[:4] == b"\x89PNG"
        assert f'<img src="{src}"' in html
    # One section per configuration, each with its best-setting table.
    for label in ("CIFAR10 ResNet20 (no BN)", "CIFAR10 ResNet110 (no BN)", "CIFAR10 ResNet20 (BN)"):
        assert f"## {label}" in md and f">{label}</h2>" in html
    assert md.count("### Best setting per method") == 4
    # The BN model recorded no statistics: its histogram is a note saying how to get one.
    bn_section = md.split("## CIFAR10 ResNet20 (BN)")[1]
    assert "Not drawn" in bn_section and "--store-stats" in bn_section
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")


def test_report_files_lists_everything_written(depth_report) -> None:
    out, files = depth_report
    assert files[:2] == [out / "report.md", out / "report.html"]
    assert all(f.is_file() for f in files)
    assert len([f for f in files if f.suffix == ".png"]) == 12


def test_report_notes_what_cannot_be_drawn(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    make_run(logs, optim_method="AdamW", eta0=1e-3, weight_decay=0.0, with_stats=False)
    make_run(
        logs, optim_method="AdamW", eta0=1e-2, weight_decay=0.0, status="diverged", with_stats=False
    )
    make_run(
        logs,
        optim_method="AdamW",
        eta0=1e-4,
        weight_decay=0.0,
        status="incomplete",
        with_stats=False,
    )
    md_path = write_report(logs)  # default output folder: logs/report
    assert md_path == logs / "report" / "report.md"
    md = md_path.read_text()
    assert (logs / "report" / "report.html").is_file()
    assert "Not drawn: no model has finished runs of both AdamL2 and AdamW" in md
    assert "no update statistics" in md
    assert images(md) == [
        "figures/CIFAR10_ResNet20_NoBN_heatmap.png",
        "figures/CIFAR10_ResNet20_NoBN_curves.png",
    ]
    assert "1 failed or incomplete runs" in md


def test_report_of_empty_or_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no runs in .*scalefree train --log-folder"):
        write_report(tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        write_report(tmp_path / "nope")
