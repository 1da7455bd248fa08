"""``scalefree plot ...`` and ``scalefree report`` through the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalefree.cli import main


def png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kind", ["heatmap", "curves", "histogram"])
def test_plot_per_configuration(kind: str, sweep: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / f"{kind}.png"
    assert main(["plot", kind, str(sweep), "--out", str(out), "--methods", "AdamL2,AdamW"]) == 0
    assert png(out)
    assert capsys.readouterr().out.split() == [str(out)]


def test_plot_histogram_options(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "h.png"
    args = [
        "plot",
        "histogram",
        str(sweep),
        "--out",
        str(out),
        "--epochs",
        "1",
        "3",
        "--quantity",
        "grad",
        "--layer",
        "linear.weight",
        "--model",
        "resnet20",
    ]
    assert main(args) == 0 and png(out)


def test_plot_one_file_per_configuration(depth_study: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "hm.png"
    assert main(["plot", "heatmap", str(depth_study), "--out", str(out), "--no-batch-norm"]) == 0
    written = capsys.readouterr().out.split()
    assert written == [
        str(tmp_path / f"hm_CIFAR10_{m}_NoBN.png") for m in ("ResNet20", "ResNet56", "ResNet110")
    ]
    assert all(png(Path(p)) for p in written)


def test_plot_correlation_default_out(depth_study: Path, capsys) -> None:
    assert main(["plot", "correlation", str(depth_study)]) == 0
    out = depth_study / "plots" / "correlation.png"
    assert png(out) and capsys.readouterr().out.strip() == str(out)


def test_report_command(sweep: Path, tmp_path: Path, capsys) -> None:
    assert main(["report", str(sweep), "--out", str(tmp_path / "rep")]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[:2] == [
        str(tmp_path / "rep" / "report.md"),
        str(tmp_path / "rep" / "report.html"),
    ]
    assert all(Path(p).is_file() for p in printed)
    # heatmap, curves, histogram, and the correlation (one model: a single point, with a note)
    assert sum(p.endswith(".png") for p in printed) == 4
    assert "Only one depth" in (tmp_path / "rep" / "report.md").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["plot", "heatmap", "{empty}"], "no runs in {empty}"),
        (["plot", "heatmap", "{missing}"], "does not exist"),
        (["plot", "heatmap", "{sweep}", "--model", "ResNet56"], "available: datasets CIFAR10"),
        (["plot", "curves", "{sweep}", "--methods", "SGD"], "match --methods SGD"),
        (["plot", "histogram", "{sweep}", "--epochs", "9"], "no statistics for epoch"),
        (["plot", "heatmap", "{sweep}", "--out", "{tmp}/x.pdf"], "--out must name a .png"),
        (["plot", "correlation", "{sweep}", "--method", "AdamProx"], "both AdamL2 and AdamProx"),
        (["plot"], "choose a figure"),
        (["report", "{empty}"], "no runs in"),
    ],
)
def test_bad_input_exits_2(argv, message, sweep: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    fill = {
        "empty": tmp_path / "empty",
        "missing": tmp_path / "missing",
        "sweep": sweep,
        "tmp": tmp_path,
    }
    argv = [a.format(**fill) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("scalefree ") and message.format(**fill) in err
    assert "Traceback" not in err


def test_argparse_errors_exit_2(sweep: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["plot", "histogram", str(sweep), "--quantity", "bogus"])
    assert exc.value.code == 2
