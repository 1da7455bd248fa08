"""``scalefree plot {heatmap,curves,histogram,correlation}`` and ``scalefree report``.

Every command reads run directories below ``LOG_FOLDER`` (the ``--log-folder`` of training or of a
sweep), filters them, draws, and prints the path of every file written. Per-configuration figures
(heatmap, curves, histogram) write one PNG per experiment configuration that matches the filters:
exactly ``--out`` when one matches, ``<stem>_<configuration><suffix>`` beside it when several do.
"""

from __future__ import annotations

import argparse
import errno
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scalefree.cli_flags import add_int
from scalefree.errors import DiskFull, UsageError
from scalefree.rundir import RunRecord
from scalefree.rundir.stats import QUANTITIES

from . import figures, layout
from .report import ensure_runs, write_report_files
from .tables import group_runs


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``plot`` (with one sub-command per figure) and ``report``."""
    plot = subparsers.add_parser(
        "plot",
        help="draw one of the paper's figures from run directories",
        description="Draw the paper's figures (Figures 2-6, Appendix C) from the runs below "
        "LOG_FOLDER.",
    )
    plot.set_defaults(func=_missing_kind)
    kinds = plot.add_subparsers(dest="kind", metavar="FIGURE", parser_class=type(plot))

    for figure in FIGURE_COMMANDS:
        p = kinds.add_parser(figure.name, help=figure.help)
        _common(p, figure.name, methods=figure.methods)
        figure.arguments(p)
        p.set_defaults(func=_guarded(figure.run))

    r = subparsers.add_parser(
        "report",
        help="Markdown + HTML report: tables and every figure the runs allow",
        description="Write report.md, report.html, summary tables and figures for the runs "
        "below LOG_FOLDER.",
    )
    r.add_argument("log_folder", metavar="LOG_FOLDER", type=Path)
    r.add_argument(
        "--out", type=Path, metavar="DIR", help="output folder (default: LOG_FOLDER/report)"
    )
    r.set_defaults(func=_guarded(_run_report))


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``run`` with a failing read or write of a file (a full disk, a folder it may not write)
    turned into one line naming the file: exit 1 for a full disk, 2 otherwise. Every file is
    written atomically (a report as a whole), so what was there before is unchanged."""

    @functools.wraps(run)
    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except OSError as exc:
            where = exc.filename or getattr(args, "out", None) or args.log_folder
            why = exc.strerror or str(exc)
            if exc.errno == errno.EEXIST:  # mkdir where a file is
                why = "a file is in the way of a folder"
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(
                    f"the disk is full: writing {where} failed ({why}); what was written before "
                    "is unchanged. Free some space and run the command again"
                ) from None
            raise UsageError(
                f"{where}: {why}; check its permissions, or pass --out to write elsewhere"
            ) from None

    return guarded


def _common(p: argparse.ArgumentParser, kind: str, methods: bool = True) -> None:
    p.add_argument(
        "log_folder", metavar="LOG_FOLDER", type=Path, help="folder holding the run directories"
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help=f"PNG to write (default: LOG_FOLDER/plots/{kind}.png)",
    )
    p.add_argument("--dataset", help="only runs on this dataset (e.g. CIFAR10)")
    p.add_argument(
        "--model", nargs="+", metavar="MODEL", help="only runs of these models (e.g. ResNet110)"
    )
    bn = p.add_mutually_exclusive_group()
    bn.add_argument(
        "--batch-norm",
        dest="batch_norm",
        action="store_const",
        const=True,
        help="only models with batch norm",
    )
    bn.add_argument(
        "--no-batch-norm",
        dest="batch_norm",
        action="store_const",
        const=False,
        help="only models without batch norm",
    )
    if methods:
        p.add_argument(
            "--methods",
            nargs="+",
            metavar="METHOD",
            help="only these optimizers, in this order (e.g. AdamL2 AdamW)",
        )
    p.add_argument("--title", help="figure title (default: describes the runs)")


def _missing_kind(args: argparse.Namespace) -> int:
    kinds = ",".join(f.name for f in FIGURE_COMMANDS)
    raise UsageError(
        f"choose a figure: scalefree plot {{{kinds}}} LOG_FOLDER (see scalefree plot --help)"
    )


def _quantity_argument(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--quantity", choices=QUANTITIES, default="update_over_alpha", help=help)


def _histogram_arguments(p: argparse.ArgumentParser) -> None:
    add_int(
        p,
        "--epochs",
        "epochs to overlay (default: up to 4 from first to last recorded)",
        minimum=0,
        metavar="E",
        nargs="+",
    )
    _quantity_argument(p, "which histogram: |u|/alpha (default, the paper's), |u|, |grad|, |x|")
    p.add_argument("--layer", help="one layer (parameter name) instead of the whole model")


def _correlation_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--baseline", default="AdamL2", help="non-scale-free method (default AdamL2)")
    p.add_argument("--method", default="AdamW", help="scale-free method (default AdamW)")
    _quantity_argument(p, "histogram whose spread is plotted (default |u|/alpha)")


# ------------------------------------------------------------------------------ selection
def _split_names(values: Sequence[str] | None) -> list[str] | None:
    """``--methods AdamL2 AdamW`` and ``--methods AdamL2,AdamW`` both work."""
    if not values:
        return None
    return [v for item in values for v in item.split(",") if v]


def select_runs(args: argparse.Namespace) -> list[RunRecord]:
    """The runs below LOG_FOLDER that pass the filters; none is a usage error listing what there
    is, so the user can correct the filter."""
    runs = ensure_runs(args.log_folder)
    filters: list[tuple[str, str, Callable[[RunRecord], bool]]] = []
    if args.dataset:
        want = args.dataset.lower()
        filters.append(
            ("--dataset", args.dataset, lambda r: str(r.get("dataset", "")).lower() == want)
        )
    models = _split_names(getattr(args, "model", None))
    if models:
        wanted = {m.lower() for m in models}
        filters.append(
            ("--model", " ".join(models), lambda r: str(r.get("model", "")).lower() in wanted)
        )
    if args.batch_norm is not None:
        flag = "--batch-norm" if args.batch_norm else "--no-batch-norm"
        filters.append((flag, "", lambda r: bool(r.get("batch_norm", True)) == args.batch_norm))
    methods = _split_names(getattr(args, "methods", None))
    if methods:
        wanted_m = {m.lower() for m in methods}
        filters.append(
            (
                "--methods",
                " ".join(methods),
                lambda r: str(r.get("optim_method", "")).lower() in wanted_m,
            )
        )
    selected = [r for r in runs if all(f(r) for _, _, f in filters)]
    if not selected:
        used = " ".join(f"{flag} {value}".strip() for flag, value, _ in filters)

        def avail(key: str) -> str:
            return ", ".join(sorted({str(r.get(key)) for r in runs}))

        raise UsageError(
            f"no runs in {args.log_folder} match {used}; available: datasets {avail('dataset')}; "
            f"models {avail('model')}; methods {avail('optim_method')}"
        )
    return selected


def _canonical_methods(runs: Sequence[RunRecord], names: list[str] | None) -> list[str] | None:
    """User spellings (any case) -> the method names stored in the runs, keeping the order."""
    if names is None:
        return None
    stored = {str(r.get("optim_method")) for r in runs}
    by_lower = {s.lower(): s for s in stored}
    return [by_lower[n.lower()] for n in names if n.lower() in by_lower]


def _out_path(args: argparse.Namespace, kind: str) -> Path:
    """``--out`` as given when it names a file; a folder (existing, or without a suffix) gets
    ``<kind>.png`` inside it."""
    if args.out is None:
        return args.log_folder / "plots" / f"{kind}.png"
    if args.out.is_dir() or not args.out.suffix:
        return args.out / f"{kind}.png"
    if args.out.suffix.lower() != ".png":
        raise UsageError(f"--out must name a .png file or a folder, got {args.out}")
    return args.out


def _per_group(args: argparse.Namespace, kind: str, draw: Callable) -> int:
    """Draw one figure per experiment configuration; print every path written."""
    runs = select_runs(args)
    methods = _canonical_methods(runs, _split_names(getattr(args, "methods", None)))
    groups = group_runs(runs)
    out = _out_path(args, kind)
    written, skipped = [], []
    for key, group in groups.items():
        path = out if len(groups) == 1 else out.with_name(f"{out.stem}_{key.slug}{out.suffix}")
        # Only the requested methods this configuration actually has (another may lack one).
        present = {str(r.get("optim_method")) for r in group}
        meth = [m for m in methods if m in present] if methods else None
        try:
            fig = draw(group, path, meth)
        except figures.NothingToPlot as exc:
            if len(groups) == 1:
                raise
            skipped.append(f"{key.label}: {exc}")
            continue
        written.append(path)
        _print_notes(fig, key.label)
    for note in skipped:
        print(f"skipped {note}", file=sys.stderr)
    if not written:
        raise UsageError(f"nothing drawn from {args.log_folder}: " + "; ".join(skipped))
    for path in written:
        print(path)
    return 0


def _run_heatmap(args: argparse.Namespace) -> int:
    return _per_group(
        args,
        "heatmap",
        lambda runs, path, methods: figures.heatmap(runs, path, methods=methods, title=args.title),
    )


def _run_curves(args: argparse.Namespace) -> int:
    return _per_group(
        args,
        "curves",
        lambda runs, path, methods: figures.curves(runs, path, methods=methods, title=args.title),
    )


def _run_histogram(args: argparse.Namespace) -> int:
    return _per_group(
        args,
        "histogram",
        lambda runs, path, methods: figures.histogram(
            runs,
            path,
            methods=methods,
            epochs=args.epochs,
            quantity=args.quantity,
            layer=args.layer,
            title=args.title,
        ),
    )


def _run_correlation(args: argparse.Namespace) -> int:
    runs = select_runs(args)
    baseline = _canonical_methods(runs, [args.baseline]) or [args.baseline]
    method = _canonical_methods(runs, [args.method]) or [args.method]
    path = _out_path(args, "correlation")
    fig = figures.correlation(
        runs, path, baseline=baseline[0], method=method[0], quantity=args.quantity, title=args.title
    )
    _print_notes(fig, "correlation")
    print(path)
    return 0


def _print_notes(fig, what: str) -> None:
    """The figure's notes (results at chance or within noise) also on stderr."""
    for note in layout.notes(fig):
        print(f"note ({what}): {note}", file=sys.stderr)


def _run_report(args: argparse.Namespace) -> int:
    for path in write_report_files(args.log_folder, args.out):
        print(path)
    return 0


@dataclass(frozen=True)
class FigureCommand:
    """One ``scalefree plot`` sub-command: a new figure kind is one entry of FIGURE_COMMANDS."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None  # its own flags
    methods: bool = True  # takes the --methods filter


FIGURE_COMMANDS: tuple[FigureCommand, ...] = (
    FigureCommand(
        "heatmap",
        "final test error over eta0 x weight decay per method (Figures 2-6)",
        _run_heatmap,
    ),
    FigureCommand(
        "curves",
        "training loss and test accuracy of each method's best setting (Fig. 3)",
        _run_curves,
    ),
    FigureCommand(
        "histogram",
        "update-magnitude histograms per epoch (Figure 3 right, Appendix C)",
        _run_histogram,
        _histogram_arguments,
    ),
    FigureCommand(
        "correlation",
        "AdamW's advantage over AdamL2 vs depth, beside the update spread (Section 4.1)",
        _run_correlation,
        _correlation_arguments,
        methods=False,
    ),
)
