"""One entry point: ``scalefree {train,sweep,plot,report,reproduce,check-scale-free,diagnose}``.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``, which registers a parser
whose ``func`` default is called with the parsed namespace and returns an exit code. Usage errors
(:class:`scalefree.errors.UsageError`) become one line on stderr and exit code 2, never a traceback;
a run stopped resumably (:class:`scalefree.errors.RunStopped`: SIGTERM, full disk) says so and how to
continue, with its own exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Sequence

from scalefree import __version__
from scalefree.errors import RunStopped, UsageError

# Subcommand modules, in the order --help lists them. Modules are imported on demand, so a broken or
# not-yet-present optional part never breaks the others.
SUBCOMMANDS: tuple[str, ...] = (
    "scalefree.train.cli",
    "scalefree.sweep.cli",
    "scalefree.plots.cli",
    "scalefree.reproduce.cli",
    "scalefree.optim.cli",
    "scalefree.diagnose.cli",
)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line naming the subcommand and flag, with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # One line naming the problem (the full usage of `train` is 20 lines that bury it).
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="scalefree",
        description="Adam with weight decay: optimizers, CIFAR training, sweeps, figures.",
    )
    parser.add_argument("--version", action="version", version=f"scalefree {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module_name in SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # a real missing dependency inside the module
                raise
            continue
        module.add_parser(sub)
    return parser


def _printable_paths() -> None:
    """Let stdout and stderr print any path: a folder name with bytes that are not UTF-8 (held
    as surrogates) is printed escaped instead of raising UnicodeEncodeError mid-run."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            with contextlib.suppress(Exception):
                stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    _printable_paths()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"scalefree {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except RunStopped as exc:  # SIGTERM, full disk: the run directory is left resumable
        print(f"scalefree {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"scalefree {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
