"""``scalefree diagnose``: how differently would AdamL2 decay the coordinates of these models?

Two ways to name what to diagnose:

* model flags, as for ``scalefree train`` (``--model ResNet110 --no-batch-norm --dataset ...``;
  several ``--model`` values give one line each in the figure): the weights a run of that
  configuration starts from. Writes ``<--out>/diagnose_<dataset>_<model>[_NoBN]_InitSeed_<s>.json``
  per model and ``<--out>/diagnose.png`` (default ``--out``: ``diagnose``);
* ``RUN_DIR`` or a log folder holding runs, ``--at final|init``: each run's last checkpoint
  (the default; runs of a log folder without one yet are skipped) or its initial weights. Writes ``<run>/diagnose_<at>.json`` and ``.png``; with ``--out DIR``
  also ``DIR/diagnose_<at>.png`` with every run's line.

Prints the table and a plain-language reading per target (one line each when there are more than
a few). ``scalefree report`` shows the run directories' diagnoses where present.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from scalefree.cli_flags import add_int
from scalefree.errors import UsageError
from scalefree.models import MODELS
from scalefree.rundir import iter_run_dirs
from scalefree.rundir.layout import DIAGNOSE_AT, diagnose_file
from scalefree.train.checkpoint import has_checkpoint
from scalefree.train.config import RunConfig

from .targets import DEFAULT_BATCHES, DataCache, diagnose_config, diagnose_run, draw, write_entry

# The RunConfig fields that decide the model, its initial weights, the batches and the loss.
CONFIG_FLAGS = frozenset(
    {
        "dataset", "dataroot", "batch_norm", "image_size", "batchsize", "seed", "init_seed",
        "amp", "device", "use_cuda", "log_folder", "synthetic_sizes", "augment", "download",
        "validation", "val_ratio", "loss_multiplier", "channels_last", "eps",
    }
)  # fmt: skip
PRINT_TABLES_UP_TO = 3  # more targets than this print one line each
__all__ = ["add_parser", "diagnose_run", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    from scalefree.train.cli import add_config_arguments

    p = sub.add_parser(
        "diagnose",
        help="how differently AdamL2 would decay the coordinates of a model (spread of sqrt v)",
        description="At fixed weights, average g^2 per coordinate over a few training batches "
        "and report how widely sqrt(v_hat) is spread: the spread of AdamL2's effective decay "
        "lambda / sqrt(v_hat) (AdamW's is 0). Name models with the flags of `scalefree train`, "
        "or pass run directories / log folders.",
    )
    p.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="RUN_DIR",
        help="run directories, or folders holding runs (instead of the model flags)",
    )
    p.add_argument(
        "--model",
        nargs="+",
        metavar="MODEL",
        help=f"{', '.join(MODELS.names())}; several: one line each (default: {RunConfig.model})",
    )
    all_fields = {f.name for f in dataclasses.fields(RunConfig)}
    add_config_arguments(p, exclude=all_fields - CONFIG_FLAGS)
    p.add_argument(
        "--at",
        choices=DIAGNOSE_AT,
        help="RUN_DIR: the run's initial weights or its last checkpoint (default: final; model "
        "flags: init, the only choice)",
    )
    add_int(
        p,
        "--batches",
        f"training batches to average over (default: {DEFAULT_BATCHES})",
        default=DEFAULT_BATCHES,
        metavar=None,
    )
    add_int(p, "--threads", "CPU threads (default: torch's)", metavar=None)
    p.add_argument(
        "--include-bias-norm",
        action="store_true",
        help="also analyze biases and normalization parameters (left out by default, as by "
        "--no-decay-bias-norm)",
    )
    p.add_argument(
        "--eval-mode",
        action="store_true",
        help="forward in eval mode (BatchNorm on running statistics) instead of train mode",
    )
    p.add_argument("--skip-existing", action="store_true", help="keep diagnoses already written")
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="output folder (model flags: default ./diagnose; RUN_DIR: the combined figure)",
    )
    p.add_argument("--progress-bar", action="store_true", help="a progress bar over the batches")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = dict(
        threads=args.threads,
        include_bias_norm=args.include_bias_norm,
        train_mode=not args.eval_mode,
        progress=args.progress_bar,
    )
    if args.paths:
        if args.model:
            raise UsageError("give either RUN_DIR(s) or --model, not both")
        args.at = args.at or "final"
        entries = _run_dirs(args, options)
        out = args.out / f"diagnose_{args.at}.png" if args.out else None
    else:
        if args.at == "final":
            raise UsageError("--at final needs a RUN_DIR (a run's last checkpoint)")
        entries = _models(args, options)
        out = (args.out or Path("diagnose")) / "diagnose.png"
    if out is not None:
        print(f"figure: {draw(entries, out)}")
    return 0


def _models(args: argparse.Namespace, options: dict[str, Any]) -> list[dict[str, Any]]:
    from scalefree.train.cli import config_from_args

    names = args.model or [RunConfig.model]
    configs = [config_from_args(args, model=name) for name in names]
    out = args.out or Path("diagnose")
    data, entries = DataCache(), []
    for config in configs:
        bn = "" if config.batch_norm else "_NoBN"
        name = f"diagnose_{config.dataset}_{config.model}{bn}_InitSeed_{config.effective_init_seed}"
        path = out / f"{name}.json"
        entry = _existing(path) if args.skip_existing else None
        written: list[Path] = []
        if entry is None:
            entry = diagnose_config(config, batches=args.batches, data=data, **options)
            written = write_entry(path, entry, figure=False)
        _show(entry, written, len(configs))
        entries.append(entry)
    return entries


def _run_dirs(args: argparse.Namespace, options: dict[str, Any]) -> list[dict[str, Any]]:
    runs = []
    for path in args.paths:
        if not path.exists():
            raise UsageError(f"{path} does not exist; pass a run directory or a log folder")
        found = list(iter_run_dirs(path))
        if not found:
            raise UsageError(f"no run directory (with a config.json) in {path}")
        if args.at == "final" and found != [path]:  # a log folder: runs not yet checkpointed
            waiting = [r for r in found if not has_checkpoint(r)]
            if waiting:
                print(f"skipped {len(waiting)} run(s) without a checkpoint yet in {path}")
            found = [r for r in found if r not in waiting]
        runs += [r for r in found if r not in runs]
    if not runs:
        raise UsageError("no run has a checkpoint yet; use --at init for the initial weights")
    overrides = {}
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    for key in ("dataroot", "device"):  # a moved dataset, another machine
        if getattr(args, key) != defaults[key]:
            overrides[key] = getattr(args, key)
    data, entries = DataCache(), []
    for r in runs:
        path = diagnose_file(r, args.at)
        entry = _existing(path) if args.skip_existing else None
        written: list[Path] = []
        if entry is None:
            entry = diagnose_run(
                r, args.at, args.batches, data=data, overrides=overrides, **options
            )
            written = [path, path.with_suffix(".png")]
        _show(entry, written, len(runs))
        entries.append(entry)
    return entries


def _existing(path: Path) -> dict[str, Any] | None:
    from scalefree.rundir import DamagedFile, read_json_object

    if not path.is_file():
        return None
    try:
        entry = read_json_object(path)
    except DamagedFile as exc:
        print(f"warning: {exc}; diagnosing again", file=sys.stderr)
        return None
    print(f"kept: {path}")
    return entry


def _show(entry: dict[str, Any], paths: list[Path], count: int) -> None:
    from .result import Diagnosis

    d = Diagnosis.from_dict(entry["diagnosis"])
    spread = "-" if d.spread is None else f"{d.spread:.3f}"
    layers = "-" if d.layer_spread is None else f"{d.layer_spread:.3f}"
    head = f"{entry['label']}: spread {spread}, layer_spread {layers} ({entry['batches']} batches)"
    if count > PRINT_TABLES_UP_TO:
        print(head)
        return
    print(head)
    print(d.table())
    print(d.reading())
    for p in paths:
        print(f"wrote: {p}")
    print()
