"""`scalefree reproduce decay-rules`: the weight-decay rules since 2022 on one lr x timescale grid,
each rule by its registry entry (AdamC, CWD, CAdamW)."""

from __future__ import annotations

import argparse

import pytest

from scalefree.cli import main
from scalefree.reproduce.figures import FIGURES, build_sweeps
from scalefree.rundir.summary import TIMESCALE_AXIS
from tests.fakeruns import STEPS_PER_EPOCH

PRESET = FIGURES["decay-rules"]


def _args(tmp_path, *extra: str) -> argparse.Namespace:
    from scalefree.cli import build_parser

    argv = ["reproduce", "decay-rules", "--dry-run", "--log-folder", str(tmp_path), *extra]
    return build_parser().parse_args(argv)


def test_the_seed000_adamw_setting_lies_inside_the_timescale_grid():
    timescale = 1 / (5e-5 * STEPS_PER_EPOCH)  # eta0 1e-3, lambda 5e-5 (schedule convention)
    assert min(PRESET.decay_values) < timescale < max(PRESET.decay_values)
    assert min(PRESET.eta0s) < 1e-3 < max(PRESET.eta0s)
    assert PRESET.decay_axis is TIMESCALE_AXIS


def test_dry_run_lists_every_method_on_the_lr_x_timescale_grid(tmp_path, capsys):
    code = main(["reproduce", "decay-rules", "--dry-run", "--log-folder", str(tmp_path),
                 "--dataroot", str(tmp_path / "data")])  # fmt: skip
    assert code == 0
    names = capsys.readouterr().out.splitlines()
    assert len(names) == 5 * 3 * 3 == len(set(names))
    assert all(n.startswith("CIFAR10_ResNet20_NoBN_") and "_WD_0_" in n for n in names)
    for method in ("AdamW", "AdamC", "CWD", "CAdamW", "AdamProx"):
        assert sum(f"_{method}_Eta0_" in n for n in names) == 9, method
    assert {n.split("_Timescale_")[1].split("_")[0] for n in names} == {"10", "50", "100"}
    assert not any(tmp_path.iterdir())  # a dry run writes nothing


def test_the_runs_carry_their_methods_switches_and_record_statistics(tmp_path):
    [sweep] = build_sweeps(PRESET, _args(tmp_path))
    configs = sweep.configs()
    assert sum(c.optim_method == "CWD" for c in configs) == 9
    # each rule is its registry entry here, not a switch on AdamW
    assert not any(c.caution or c.cautious_decay for c in configs)
    assert all(c.store_stats and c.weight_decay == 0 and c.decay_timescale for c in configs)
    # AdamC differs from AdamW only while the lr changes: the preset decays it
    assert {c.scheduler for c in configs} == {"Cosine"}
    assert {c.dataroot for c in build_sweeps(PRESET, _args(tmp_path, "--dataroot", "d"))[0].
            configs()} == {"d"}  # fmt: skip


@pytest.mark.parametrize("flag", ["--caution", "--cautious-decay", "--decay-timescale",
                                  "--weight-decay"])  # fmt: skip
def test_settings_the_preset_owns_are_not_flags(flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "decay-rules", "--dry-run", flag, "1"])
    assert exc.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err
