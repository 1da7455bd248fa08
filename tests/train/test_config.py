"""RunConfig's fields describe themselves: flags, validation, identity and names come from that."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest

from scalefree.errors import UsageError
from scalefree.train.cli import add_config_arguments, config_from_args
from scalefree.train.config import (
    EXECUTION_FIELDS,
    RunConfig,
    choices_of,
    config_fields,
    flag,
    help_of,
    setting,
    spec_of,
)

# The execution-only fields before they were generated from the metadata: a field moving in or
# out of this set changes which runs count as the same run.
OLD_EXECUTION_FIELDS = {
    "use_cuda", "device", "log_folder", "dataroot", "download", "compile", "channels_last",
    "eval_interval", "reproducible", "store_stats", "store_stats_interval", "progress",
}  # fmt: skip


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_config_arguments(p)
    return p


def test_every_field_is_one_flag_with_its_own_help():
    actions = {a.dest: a for a in parser()._actions if a.dest != "help"}
    assert set(actions) == {f.name for f in config_fields()}
    for f in config_fields():
        action, spec = actions[f.name], spec_of(f)
        assert action.option_strings == [flag(f.name)]
        assert action.help.startswith(help_of(f)), f.name
        if spec.choices is not None:
            assert tuple(action.choices) == choices_of(f), f.name


def test_flags_parse_to_the_default_config_and_back():
    assert config_from_args(parser().parse_args([])) == RunConfig()
    args = parser().parse_args(
        "--no-batch-norm --betas 0.8 0.9 --compile --synthetic-sizes 64 32 --dataset synthetic "
        "--init-seed 4 --amp bf16".split()
    )
    c = config_from_args(args)
    assert (c.batch_norm, c.betas, c.compile, c.init_seed, c.amp) == (
        False, (0.8, 0.9), "on", 4, "bf16",
    )  # fmt: skip
    assert c.synthetic_sizes == (64, 32)


def test_execution_fields_come_from_the_metadata_and_are_unchanged():
    assert EXECUTION_FIELDS == OLD_EXECUTION_FIELDS
    identity = RunConfig().identity()
    assert set(identity) == {f.name for f in config_fields()} - OLD_EXECUTION_FIELDS
    assert "synthetic_sizes" in identity


def test_channels_last_help_says_what_auto_does():
    """auto is on for both devices (scalefree.train.trainer.resolve_channels_last)."""
    import torch

    from scalefree.train.trainer import resolve_channels_last

    help_text = spec_of("channels_last").help
    assert "CUDA" in help_text and "CPU" in help_text and "bf16" not in help_text
    for device in ("cpu", "cuda"):
        assert resolve_channels_last(RunConfig(), torch.device(device)) is True


def test_an_old_config_json_still_loads(tmp_path):
    """config.json of older runs: fields added since are missing, --compile was a switch,
    pairs are JSON lists, and bookkeeping keys RunConfig does not have are ignored."""
    new = RunConfig(betas=(0.8, 0.9), max_steps=3)
    old = new.to_dict()
    for key in ("divergence_factor", "synthetic_sizes", "progress", "channels_last"):
        del old[key]
    old |= {"compile": True, "run_name": "x", "torch_version": "2.1"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    loaded = RunConfig.from_dict(json.loads(path.read_text()))
    assert loaded.compile == "on" and loaded.betas == (0.8, 0.9)
    assert loaded.identity() == new.identity()
    assert loaded.run_name() == new.run_name()
    assert RunConfig.from_dict(old | {"compile": False}).compile == "off"


def test_synthetic_sizes_round_trip_and_join_the_name():
    c = RunConfig(dataset="synthetic", synthetic_sizes=[64, 32])
    assert c.synthetic_sizes == (64, 32)
    assert c.to_dict()["synthetic_sizes"] == [64, 32]
    assert RunConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert c.run_name().endswith("_Synthetic_64_32_Test")
    plain = RunConfig(dataset="synthetic")
    assert plain.run_name() == c.run_name().replace("_Synthetic_64_32", "")
    assert c.identity() != plain.identity()


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"synthetic_sizes": (64, 32)}, "--synthetic-sizes applies only to --dataset synthetic"),
        ({"dataset": "synthetic", "synthetic_sizes": (0, 32)}, "--synthetic-sizes must be two"),
        ({"dataset": "synthetic", "synthetic_sizes": (64,)}, "--synthetic-sizes must be two"),
        ({"dataset": "synthetic", "synthetic_sizes": (6.5, 3)}, "--synthetic-sizes must be two"),
        ({"dataset": "synthetic", "synthetic_sizes": 64}, "--synthetic-sizes must be two"),
        ({"batchsize": 2**62 + 1}, "--batchsize must be a positive integer of at most 2**62"),
        ({"max_steps": 0}, "--max-steps must be a positive integer, got 0"),
        ({"eval_interval": True}, "--eval-interval must be a positive integer"),
        ({"seed": -1}, "--seed must be an integer from 0 to 2**64 - 1"),
        ({"init_seed": 2**64}, "--init-seed must be an integer from 0 to 2**64 - 1"),
        ({"eps": -1.0}, "--eps must be a non-negative finite number"),
        ({"eta0": float("nan")}, "--eta0 must be a positive finite number"),
        ({"val_ratio": 1.0}, "--val-ratio must be strictly between 0 and 1"),
        ({"betas": (0.9, 1.0)}, "--betas must be two numbers in [0, 1)"),
        ({"lr_gamma": 1.5}, "--lr-gamma must be in (0, 1]"),
        ({"lr_power": 0.0}, "--lr-power must be a positive number"),
        ({"divergence_factor": 1.0}, "--divergence-factor must be a finite number > 1"),
        ({"progress": "loud"}, "--progress must be one of auto, bar, plain, none"),
        ({"compile": "yes"}, "--compile must be one of auto, on, off"),
        ({"model": "VGG16"}, "--model: unknown model"),
    ],
)
def test_validation_comes_from_the_fields_and_names_the_flag(kw, msg):
    with pytest.raises(UsageError) as err:
        RunConfig(**kw)
    assert msg in str(err.value)


def test_a_changed_default_does_not_rename_runs():
    """A name suffix is left out at its recorded omit_at value, not at the field's default: a
    later RunConfig with another default still names yesterday's runs as they were named."""

    @dataclasses.dataclass(frozen=True)
    class Later(RunConfig):
        eps: float = setting(1e-6, "Adam's epsilon", suffix=spec_of("eps").suffix)
        divergence_factor: float = setting(
            50.0, "divergence factor", suffix=spec_of("divergence_factor").suffix
        )

    assert Later(eps=1e-8, divergence_factor=1000.0).run_name() == RunConfig().run_name()
    assert Later().run_name() == RunConfig(eps=1e-6, divergence_factor=50.0).run_name()
    assert Later().run_name().endswith("_Eps_1e-06_DivFactor_50_Test")


def test_a_new_setting_is_one_field():
    """A field with its Spec is validated, named and part of the identity with no other edit
    (here a later ``decay_timescale``, as issue 14 plans)."""
    from scalefree.train.config import POSITIVE, Suffix

    @dataclasses.dataclass(frozen=True)
    class WithTimescale(RunConfig):
        decay_timescale: float | None = setting(
            None,
            "EMA timescale of the decay in epochs (default: use --weight-decay)",
            check=POSITIVE,
            suffix=Suffix.named("Timescale", None, 140),
        )

    assert WithTimescale().run_name() == RunConfig().run_name()
    c = WithTimescale(decay_timescale=30.0, validation=True)
    assert c.run_name().endswith("_Timescale_30_Val_0.1")
    assert c.identity()["decay_timescale"] == 30.0
    with pytest.raises(UsageError, match="--decay-timescale must be a positive finite number"):
        WithTimescale(decay_timescale=-1.0)
    p = argparse.ArgumentParser()
    add_config_arguments(p, config=WithTimescale)
    help_text = " ".join(p.format_help().split())
    assert "--decay-timescale DECAY_TIMESCALE EMA timescale of the decay in epochs" in help_text
    args = p.parse_args(["--decay-timescale", "30", "--validation"])
    assert config_from_args(args, WithTimescale) == c


def test_named_and_switch_suffixes_render_as_the_run_names_always_have():
    """Suffix.named prints Name_<value> with fmt_num's numbers, pairs joined by "_", strings as
    they are; Suffix.switch prints its text; both are omitted at omit_at (and outside their
    schedulers)."""
    from scalefree.train.config import Suffix

    eps = Suffix.named("Eps", 1e-8, 40)
    assert eps.part(1e-8, "None") is None
    assert eps.part(1e-7, "None") == "Eps_1e-07"
    assert eps.part(2.0, "None") == "Eps_2"  # integral floats lose .0, as the reference's
    assert Suffix.named("Betas", (0.9, 0.999), 30).part((0.9, 0.99), "None") == "Betas_0.9_0.99"
    assert Suffix.named("Betas", (0.9, 0.999), 30).part([0.5, 0.9], "None") == "Betas_0.5_0.9"
    assert Suffix.named("Synthetic", None, 130).part((64, 32), "None") == "Synthetic_64_32"
    assert Suffix.named("AMP", "none", 70).part("bf16", "None") == "AMP_bf16"
    step = Suffix.named("StepSize", 100, 100, schedulers=("Step",))
    assert step.part(30, "Step") == "StepSize_30" and step.part(30, "Cosine") is None
    cwd = Suffix.switch("CWD", False, 22)
    assert cwd.part(True, "None") == "CWD" and cwd.part(False, "None") is None


def test_image_size_and_no_augment_join_the_name():
    """--image-size N and --no-augment name their runs (Img_N, NoAug); the defaults keep the
    names of earlier runs, and 32 (the full size) is the default None."""
    plain = RunConfig()
    small = RunConfig(image_size=8, augment=False)
    assert small.run_name() == plain.run_name().replace("_Test", "_Img_8_NoAug_Test")
    assert RunConfig(image_size=32).image_size is None
    assert RunConfig(image_size=32).run_name() == plain.run_name()
    assert RunConfig.from_dict(json.loads(json.dumps(small.to_dict()))) == small
    assert small.identity() != plain.identity()
    with pytest.raises(UsageError, match="--image-size"):
        RunConfig(image_size=7)
