"""The ``Examples`` of the nine public optimizer classes run as doctests (stdlib ``doctest``).

Each class's docstring must hold at least one example, and every example must print what it says
(a first Adam step moves a coordinate by lr against the sign of its gradient, so the printed
numbers follow from the rule by hand; the docstrings say how).
"""

from __future__ import annotations

import doctest

import pytest

import scalefree.optim as sfo

PUBLIC = [n for n in sfo.__all__ if isinstance(getattr(sfo, n), type) and n != "AdamFamily"]


def test_the_nine_public_optimizers_are_checked():
    assert PUBLIC == [
        "AdamL2", "AdamW", "AdamProx", "AdamProxL2", "AdamProxL1", "AdamProxD", "AdamC", "CWD",
        "CAdamW",
    ]  # fmt: skip


@pytest.mark.parametrize("name", PUBLIC)
def test_examples_in_the_docstring_run(name):
    cls = getattr(sfo, name)
    tests = [t for t in doctest.DocTestFinder().find(cls, name) if t.name == name]
    assert len(tests) == 1 and tests[0].examples, f"{name}: no Examples in the class docstring"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
