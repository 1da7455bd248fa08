"""Every flag of every subcommand has help, and each help names its default once."""

from __future__ import annotations

import argparse
import re

import pytest

from scalefree.cli import build_parser


def parsers(parser: argparse.ArgumentParser, prefix: str = "scalefree"):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, f"{prefix} {name}")


PARSERS = dict(parsers(build_parser()))


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_flag_has_help_with_one_default(name: str) -> None:
    for action in PARSERS[name]._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        flag = "/".join(action.option_strings)
        assert action.help and action.help.strip(), f"{name} {flag} has no help"
        # "(default: ..." at most once ("%(default)s" is argparse's placeholder inside it).
        assert len(re.findall(r"(?<!%)\(default", action.help)) <= 1, f"{name} {flag}"


def test_check_scale_free_flags_show_their_defaults() -> None:
    text = " ".join(PARSERS["scalefree check-scale-free"].format_help().split())
    for needle in (
        "--steps N optimizer steps per run (default: 100)",
        "--lr LR learning rate alpha of every run (default: 0.01)",
        "(default: 0 1e-08)",
        "(default: float64)",
        "gradient scales (default: 0)",
    ):
        assert needle in text


def test_init_seed_default_is_said_once() -> None:
    text = " ".join(PARSERS["scalefree train"].format_help().split())
    assert "seed of the stored initial weights (default: --seed) --" in text
    assert "(default: --seed) (default: None)" not in text


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return parser._option_string_actions[flag]


def test_registry_choices_in_help_are_every_registered_name() -> None:
    """--optim-method, --model and --dataset list their registries in full (they once listed 11
    of 14 optimizers); --scheduler and --executor take their choices from theirs."""
    from scalefree.data import DATASETS
    from scalefree.models import MODELS
    from scalefree.optim import OPTIMIZERS
    from scalefree.sweep.executor_choice import EXECUTORS
    from scalefree.train.schedulers import SCHEDULERS

    train = PARSERS["scalefree train"]
    for flag, registry in (
        ("--optim-method", OPTIMIZERS),
        ("--model", MODELS),
        ("--dataset", DATASETS),
    ):
        text = " ".join(_option(train, flag).help.split())
        assert ", ".join(registry.names()) in text, flag
    assert tuple(_option(train, "--scheduler").choices) == SCHEDULERS.names()
    assert len(SCHEDULERS) == 5 and len(OPTIMIZERS.names()) >= 14
    sweep = PARSERS["scalefree sweep"]
    assert (
        tuple(_option(sweep, "--executor").choices)
        == EXECUTORS.names()
        == (
            "local",
            "ray",
            "slurm",
        )
    )
    diagnose_help = " ".join(_option(PARSERS["scalefree diagnose"], "--model").help.split())
    assert ", ".join(MODELS.names()) in diagnose_help


def test_a_registered_entry_appears_in_the_help_and_choices() -> None:
    """The lists are generated when the parser is built, not copied: a new entry shows up."""
    import dataclasses

    from scalefree.optim import OPTIMIZERS
    from scalefree.sweep.executor_choice import EXECUTORS, ExecutorEntry
    from scalefree.train.schedulers import SCHEDULERS, SchedulerEntry

    toy_opt = dataclasses.replace(OPTIMIZERS.get("SGD"), name="ToyOpt")
    with (
        OPTIMIZERS.registered(toy_opt),
        SCHEDULERS.registered(SchedulerEntry("ToySched", lambda o, c: None, "none")),
        EXECUTORS.registered(ExecutorEntry("toyexec", lambda a, f: None, "nowhere")),
    ):
        parsers_now = dict(parsers(build_parser()))
        train, sweep = parsers_now["scalefree train"], parsers_now["scalefree sweep"]
        assert "ToyOpt (default: AdamW)" in " ".join(_option(train, "--optim-method").help.split())
        assert "ToySched" in _option(train, "--scheduler").choices
        assert "toyexec" in _option(sweep, "--executor").choices
    assert "ToySched" not in _option(build_parser_train(), "--scheduler").choices


def build_parser_train() -> argparse.ArgumentParser:
    return dict(parsers(build_parser()))["scalefree train"]
