"""Integer flags (``scalefree.cli_flags``): one rule, checked while the command line is parsed,
in one wording for every command, before any work is done."""

from __future__ import annotations

import argparse

import pytest

from scalefree.cli import main
from scalefree.cli_flags import add_int
from tests.helpers import exit_code


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sweep", "--workers", "0"], "--workers must be a positive integer, got 0"),
        (["sweep", "--runs-per-gpu", "-2"], "--runs-per-gpu must be a positive integer, got -2"),
        (["sweep", "--cpus-per-run", "0"], "--cpus-per-run must be a positive integer, got 0"),
        (["sweep", "--ray-num-cpus", "0"], "--ray-num-cpus must be a positive integer, got 0"),
        (["sweep", "--max-extensions", "-1"], "--max-extensions must be an integer >= 0, got -1"),
        (["sweep", "--slurm-gpus-per-node", "-1"], "--slurm-gpus-per-node must be an integer >= 0"),
        (["sweep", "--slurm-array-parallelism", "0"], "--slurm-array-parallelism must be a pos"),
        (["diagnose", "--threads", "0"], "--threads must be a positive integer, got 0"),
        (["reproduce", "quadratic", "--seed", "-1"], "--seed must be an integer >= 0, got -1"),
        (["reproduce", "fig2", "--epochs", "0"], "--epochs must be a positive integer, got 0"),
        (["plot", "histogram", "logs", "--epochs", "2", "-1"], "--epochs must be an integer >= 0"),
        (["check-scale-free", "--steps", "0"], "--steps must be a positive integer, got 0"),
    ],
)
def test_a_number_out_of_range_stops_the_parse_with_one_line(
    argv, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # where logs/, results/ or plots would go
    assert exit_code(main, argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.iterdir())  # nothing written, nothing started


def test_add_int_parses_ints_lists_and_defaults():
    p = argparse.ArgumentParser(exit_on_error=False)
    add_int(p, "--count", default=3)
    add_int(p, "--indices", minimum=0, nargs="+", metavar="I")
    assert vars(p.parse_args([])) == {"count": 3, "indices": None}
    assert vars(p.parse_args(["--count", "1", "--indices", "0", "7"])) == {
        "count": 1,
        "indices": [0, 7],
    }
    assert "--count N" in p.format_help() and "--indices I [I ...]" in p.format_help()
    with pytest.raises(argparse.ArgumentError, match="invalid int value: '1.5'"):
        p.parse_args(["--count", "1.5"])
