"""``scalefree check-scale-free``: the empirical scale-freeness table for the registered optimizers."""

from __future__ import annotations

import argparse
import importlib

import torch

from scalefree.cli_flags import add_int
from scalefree.errors import UsageError
from scalefree.optim.adam_family import DECAY_CONVENTIONS
from scalefree.optim.registry import OPTIMIZERS
from scalefree.optim.scale_free import check_scale_free, format_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-scale-free",
        help="check which optimizers are invariant to coordinate-wise gradient rescaling",
        description=(
            "Run each optimizer on a fixed random least-squares problem twice, with gradients g and "
            "with every coordinate multiplied by a fixed constant in [1e-3, 1e3], and print the max "
            "relative difference of the iterates for eps = 0 and eps = 1e-8."
        ),
    )
    p.add_argument(
        "--optimizers",
        nargs="+",
        metavar="NAME",
        help=f"registered names (default: all): {', '.join(OPTIMIZERS.names())}",
    )
    p.add_argument(
        "--factory",
        metavar="MODULE:FUNC",
        help="check a user factory FUNC(params) -> torch.optim.Optimizer instead",
    )
    add_int(p, "--steps", default=100, metavar=None)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--eps", type=float, nargs="+", default=[0.0, 1e-8], dest="eps_values")
    p.add_argument(
        "--decay-convention",
        choices=DECAY_CONVENTIONS,
        default="schedule",
        help="Adam family: schedule (s = weight_decay*lr_t/alpha, the paper's; default), lr "
        "(s = weight_decay*lr_t, torch's and the library classes' default) or corrected "
        "(s = weight_decay*lr_t^2/alpha, AdamC's); entries defined by a convention (AdamC) keep "
        "their own",
    )
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    add_int(p, "--seed", minimum=0, default=0, metavar=None)
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    _document(p)
    p.set_defaults(func=run)


# Help and metavar of the numeric flags, by dest (every default is shown by --help).
_FLAG_HELP = {
    "steps": ("N", "optimizer steps per run"),
    "lr": ("LR", "learning rate alpha of every run"),
    "weight_decay": ("LAMBDA", "weight decay lambda of every run"),
    "eps_values": ("EPS", "Adam epsilons to check, one table column each; only eps = 0 is exactly "
                   "scale-free"),
    "dtype": (None, "precision of the problem and the optimizer state; float64 shows the ~1e-16 "
              "of an exactly scale-free method"),
    "seed": (None, "seed of the random problem and of the gradient scales"),
}  # fmt: skip


def _document(p: argparse.ArgumentParser) -> None:
    for action in p._actions:
        if action.dest in _FLAG_HELP and action.help is None:
            metavar, text = _FLAG_HELP[action.dest]
            default = action.default
            shown = " ".join(f"{v:g}" for v in default) if isinstance(default, list) else default
            action.help = f"{text} (default: {shown})"
            if metavar is not None:
                action.metavar = metavar


def _load_factory(spec: str):
    module, _, func = spec.partition(":")
    if not module or not func:
        raise UsageError(f"--factory must look like 'package.module:function', got {spec!r}")
    try:
        return getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"--factory {spec!r} could not be loaded: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    if not args.lr > 0:
        raise UsageError(f"--lr must be positive, got {args.lr}")
    if not args.weight_decay >= 0:
        raise UsageError(f"--weight-decay must be non-negative, got {args.weight_decay}")
    factory = _load_factory(args.factory) if args.factory else None
    results = check_scale_free(
        args.optimizers,
        factory=factory,
        factory_name=args.factory or "custom",
        lr=args.lr,
        weight_decay=args.weight_decay,
        eps_values=args.eps_values,
        steps=args.steps,
        seed=args.seed,
        dtype=getattr(torch, args.dtype),
        decay_convention=args.decay_convention,
    )
    print(
        f"scale-freeness check: {args.steps} steps, lr={args.lr:g}, weight_decay={args.weight_decay:g}, "
        f"decay_convention={args.decay_convention} (Adam family), {args.dtype}, "
        "gradient scales log-uniform in [1e-3, 1e3]"
    )
    print(format_table(results))
    if args.json:
        from scalefree.io import atomic_write_json

        atomic_write_json(args.json, [r.__dict__ | {"verdict": r.verdict} for r in results])
    return 0
