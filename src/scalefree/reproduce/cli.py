"""``scalefree reproduce <experiment>``: the paper's experiments, one preset each.

    scalefree reproduce quadratic              # Figure 1 / Corollary 1: GD vs AdamW
    scalefree reproduce adagrad-restart        # Appendix B: AdaGrad with restarts vs GD
    scalefree reproduce fig3 --models ResNet20 # a CIFAR figure: sweeps, then the report

The dataset-free experiments print a short table and a one-line verdict, then write
``<name>.json`` and ``<name>.png`` under ``--out`` (default ``results/reproduce/<experiment>``, in
the current folder). The sweep presets (fig2 .. fig6, :data:`scalefree.reproduce.figures.FIGURES`)
run through the launch path of ``scalefree sweep`` and write their report into
``<log folder>/report``; they accept every ``scalefree train`` flag they do not fix themselves.

Extension point: :data:`PRESETS` maps an experiment name to its :class:`Preset`. A dataset-free
experiment is one more entry here: its ``add_arguments(parser)`` adds the flags beyond the common
``--out/--iters/--seed/--no-plot``, and ``run(args)`` does the work, prints, and returns an exit
code. A sweep preset is one :class:`~scalefree.reproduce.figures.FigurePreset` (its methods,
experiments and the run settings it fixes): one more entry of ``FIGURES`` for a paper figure, or
``PRESETS[name] = sweep_preset(FigurePreset(...))`` for another study; its flags (every train flag
it does not fix) and its launch come with it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scalefree.cli_flags import add_int
from scalefree.errors import UsageError
from scalefree.reproduce.figures import FIGURES, FigurePreset, add_arguments, run_preset


@dataclass(frozen=True)
class Preset:
    """One ``scalefree reproduce`` experiment.

    Args:
        help: one line for ``--help``.
        add_arguments: adds the experiment's own flags (may do nothing).
        run: runs it from the parsed namespace; returns the exit code.
    """

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# ----------------------------------------------------------------------------------- validation


def _common(args: argparse.Namespace) -> tuple[Path, int | None, int]:
    """The flags every preset shares: (out_dir, iters or None, seed). ``--out`` is checked here;
    the parser has checked the numbers (``scalefree.cli_flags``)."""
    out = Path(args.out if args.out is not None else Path("results", "reproduce", args.experiment))
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out must be a directory, but {out} is a file")
    return out, args.iters, args.seed


def _print_paths(paths: list[Path]) -> None:
    for path in paths:
        print(f"wrote {path}")


# ------------------------------------------------------------------------------------ quadratic


def _quadratic_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weight-decay",
        type=float,
        default=0.0,
        metavar="LAMBDA",
        help="AdamW's weight decay lambda, in [0, 1) (default 0); any value keeps AdamW's two "
        "curves identical, since the decay acts on x, not on the gradient",
    )


def _run_quadratic(args: argparse.Namespace) -> int:
    from scalefree.reproduce import quadratic as q

    out, iters, seed = _common(args)
    wd = args.weight_decay
    if not (math.isfinite(wd) and 0 <= wd < 1):
        raise UsageError(f"--weight-decay must be a number in [0, 1), got {wd}")
    defaults = q.QuadraticConfig()
    config = q.QuadraticConfig(
        iters=iters if iters is not None else defaults.iters, seed=seed, weight_decay=wd
    )
    result = q.run_quadratic(config)
    print(
        f"Figure 1 / Corollary 1: GD vs AdamW (eps = 0) on a d = {config.dim} quadratic, "
        f"condition numbers 1 and {q.format_kappa(config.condition_number)}, "
        f"{config.iters} iterations, step sizes tuned per problem"
    )
    print(q.summary_table(result))
    print(
        f"max relative difference between the two curves: AdamW {result.adamw_rel_diff:.2e}, "
        f"GD {result.gd_rel_diff:.2e}"
    )
    print(q.verdict(result))
    _print_paths(q.save_quadratic(result, out, plot=not args.no_plot))
    return 0


# ------------------------------------------------------------------------------ adagrad-restart


def _adagrad_arguments(parser: argparse.ArgumentParser) -> None:
    add_int(
        parser,
        "--round-length",
        "AdaGrad iterations per round (default 32 d, Algorithm 3 with M/mu = 1)",
        metavar="T",
    )


def _run_adagrad_restart(args: argparse.Namespace) -> int:
    from scalefree.reproduce import adagrad_restart as a

    out, iters, seed = _common(args)
    round_length = args.round_length
    T = a.AdaGradRestartConfig(round_length=round_length).T
    if iters is not None and iters < T:
        raise UsageError(f"--iters must be at least one round of T = {T} iterations, got {iters}")
    config = a.AdaGradRestartConfig(round_length=round_length, iters=iters, seed=seed)
    result = a.run_adagrad_restart(config)
    print(
        f"Appendix B: AdaGrad with restarts (T = {config.T}, {config.rounds} rounds) vs GD "
        f"(step size tuned per problem) on a d = {config.dim} quadratic under 3 rescalings"
    )
    print(a.summary_table(result))
    print(
        f"max relative difference between AdaGrad's iterate curves: {result.adagrad_rel_diff:.2e}"
    )
    print(a.verdict(result))
    _print_paths(a.save_adagrad_restart(result, out, plot=not args.no_plot))
    return 0


# ------------------------------------------------------------------------------------- registry

PRESETS: dict[str, Preset] = {
    "quadratic": Preset(
        help="Figure 1 / Corollary 1: GD vs AdamW on quadratics with condition numbers 1 and 1e5",
        add_arguments=_quadratic_arguments,
        run=_run_quadratic,
    ),
    "adagrad-restart": Preset(
        help="Appendix B: projected AdaGrad with restarts is unaffected by diagonal rescaling",
        add_arguments=_adagrad_arguments,
        run=_run_adagrad_restart,
    ),
}


def sweep_preset(figure: FigurePreset) -> Preset:
    """The :class:`Preset` of a sweep preset: its flags and its launch."""
    return Preset(
        help=figure.help,
        add_arguments=lambda parser: add_arguments(parser, figure),
        run=lambda args: run_preset(figure, args),
    )


# The paper's CIFAR figures (fig2 ... fig6): sweeps of the figure's grids, then the report of the
# log folder; each preset's help names its figure and source (scalefree.reproduce.figures).
PRESETS.update({name: sweep_preset(figure) for name, figure in FIGURES.items()})


def _depth_preset(name: str) -> Preset:
    from scalefree.reproduce.depth import DEPTH, DEPTH_RESNET, run_depth

    preset = {"depth": DEPTH, "depth-resnet": DEPTH_RESNET}[name]

    def arguments(parser: argparse.ArgumentParser) -> None:
        add_arguments(parser, preset)
        parser.add_argument(
            "--with-runs",
            nargs="+",
            type=Path,
            default=[],
            metavar="FOLDER",
            help="further log folders whose runs join the study's tables and figures (e.g. the "
            "other depth preset's), read only",
        )

    return Preset(preset.help, arguments, lambda args: run_depth(args, preset))


# The depth study: two sweep presets (the fully connected family with the whole protocol, the
# ResNets with a reduced one) whose run adds the study's tables and figures after the report.
PRESETS["depth"] = _depth_preset("depth")
PRESETS["depth-resnet"] = _depth_preset("depth-resnet")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``reproduce`` and one sub-subcommand per entry of :data:`PRESETS`."""
    parser = subparsers.add_parser(
        "reproduce",
        help="reproduce a paper experiment: quadratic and adagrad-restart (no dataset), "
        "fig2..fig6 (CIFAR sweeps + report), decay-rules (the weight-decay rules since 2022), depth and depth-resnet (the depth claim at laptop scale)",
        description="Reproduce a paper experiment. quadratic and adagrad-restart need no dataset: "
        "they print a table and a verdict and write JSON and PNG. fig2..fig6 run the paper's "
        "learning-rate x weight-decay sweeps (scalefree sweep), decay-rules a learning-rate x "
        "decay-timescale sweep of the weight-decay rules since 2022; then they write the report.",
    )
    sub = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT", parser_class=type(parser))
    for name, preset in PRESETS.items():
        p = sub.add_parser(name, help=preset.help, description=preset.help)
        p.add_argument(
            "--out",
            type=Path,
            metavar="DIR",
            help="report folder (default: <log folder>/report)"
            if name in FIGURES or name.startswith("depth")
            else f"output directory (default: results/reproduce/{name} in the current folder)",
        )
        add_int(p, "--iters", "iterations (gradient calls) per run (default: the experiment's)")
        add_int(
            p, "--seed", "seed of the start point (default 0)", minimum=0, default=0, metavar=None
        )
        p.add_argument("--no-plot", action="store_true", help="write the JSON only, no PNG")
        preset.add_arguments(p)
        p.set_defaults(func=preset.run)
    parser.set_defaults(func=_missing_experiment(parser))
    return parser


def _missing_experiment(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise UsageError(
            f"name an experiment: one of {', '.join(PRESETS)} (see '{parser.prog} --help')"
        )

    return run
