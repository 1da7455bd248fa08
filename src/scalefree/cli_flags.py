"""Integer flags that every ``scalefree`` command declares alike: a count (at least 1) or an
index (at least 0), checked while the command line is parsed.

``--workers 0`` or ``--batches -1`` stops before any work is done, with exit 2, the command's
usage line, and one message in one wording for every command:
``--workers must be a positive integer, got 0``. The Python API checks its own arguments as
well (for example, the executors check theirs).
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_int"]


def _requirement(minimum: int) -> str:
    """How a flag's value must be, as the error message says it."""
    return "must be a positive integer" if minimum == 1 else f"must be an integer >= {minimum}"


class _AtLeast(argparse.Action):
    """Parses an int (with ``nargs``, a list of ints) and checks each is >= ``minimum``."""

    def __init__(self, *args: Any, minimum: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **(kwargs | {"type": int}))
        self.minimum = minimum

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        for value in values if isinstance(values, list) else [values]:
            if value < self.minimum:
                parser.error(f"{option_string} {_requirement(self.minimum)}, got {value}")
        setattr(namespace, self.dest, values)


def add_int(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    flag: str,
    help: str | None = None,
    *,
    minimum: int = 1,
    metavar: str | None = "N",
    **options: Any,
) -> argparse.Action:
    """Declare ``flag``: an integer of at least ``minimum`` (1: a count; 0: an index or seed).
    ``options`` (``default``, ``nargs``) go to ``add_argument`` as they are."""
    return parser.add_argument(
        flag, action=_AtLeast, minimum=minimum, metavar=metavar, help=help, **options
    )
