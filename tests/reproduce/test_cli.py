"""``scalefree reproduce``: end to end through scalefree.cli.main, and its usage errors."""

from __future__ import annotations

import json

import pytest

from scalefree.cli import build_parser, main
from scalefree.reproduce.cli import PRESETS
from tests.helpers import exit_code


def test_reproduce_quadratic_end_to_end(tmp_path, capsys):
    out = tmp_path / "quad"
    assert main(["reproduce", "quadratic", "--out", str(out)]) == 0
    assert (out / "quadratic.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads((out / "quadratic.json").read_text())
    assert data["adamw_rel_diff"] < 1e-10
    printed = capsys.readouterr().out
    assert "AdamW" in printed and "GD" in printed and "reproduced:" in printed
    assert str(out / "quadratic.json") in printed and str(out / "quadratic.png") in printed


def test_reproduce_adagrad_restart_no_plot(tmp_path, capsys):
    argv = [
        "reproduce",
        "adagrad-restart",
        "--out",
        str(tmp_path),
        "--no-plot",
        "--round-length",
        "40",
        "--iters",
        "400",
        "--seed",
        "1",
    ]
    assert main(argv) == 0
    data = json.loads((tmp_path / "adagrad_restart.json").read_text())
    assert data["config"]["T"] == 40 and data["config"]["seed"] == 1
    assert not (tmp_path / "adagrad_restart.png").exists()
    assert "AdaGrad-restart" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["quadratic", "--iters", "0"], "--iters"),
        (["quadratic", "--seed", "-1"], "--seed"),
        (["quadratic", "--weight-decay", "1.5"], "--weight-decay"),
        (["quadratic", "--weight-decay", "nan"], "--weight-decay"),
        (["adagrad-restart", "--iters", "5"], "--iters"),
        (["adagrad-restart", "--round-length", "0"], "--round-length"),
    ],
)
def test_bad_values_exit_2_naming_the_flag(argv, flag, tmp_path, capsys):
    assert exit_code(main, ["reproduce", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_out_must_not_be_a_file(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["reproduce", "quadratic", "--out", str(target)]) == 2
    assert "--out" in capsys.readouterr().err


def test_unparsable_value_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "quadratic", "--iters", "many"])
    assert exc.value.code == 2
    assert "--iters" in capsys.readouterr().err


def test_missing_experiment_exits_2(capsys):
    assert main(["reproduce"]) == 2
    assert "quadratic" in capsys.readouterr().err


def test_every_preset_has_a_parser_with_the_common_flags(tmp_path):
    parser = build_parser()
    for name in PRESETS:
        args = parser.parse_args(
            ["reproduce", name, "--out", str(tmp_path), "--iters", "7", "--seed", "3", "--no-plot"]
        )
        assert args.experiment == name and args.iters == 7 and args.seed == 3 and args.no_plot
        assert args.func is PRESETS[name].run
