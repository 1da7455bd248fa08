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
