"""``scalefree train``: every flag of the reference ``main.py`` plus scalefree's own.

Flags are generated from the RunConfig fields and their Spec (help, choices, CLI shape), so
``train``, ``sweep`` and ``reproduce`` can never disagree on a flag's name, type, help or default.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable
from typing import Any

from scalefree.trackers import add_tracker_arguments, settings_from_args
from scalefree.train.config import RunConfig, choices_of, flag, help_of, spec_of
from scalefree.train.tracking import tracker_callbacks


def _base_type(annotation: Any) -> tuple[Any, int | None]:
    """(element type, nargs) of a field: int | None -> (int, None); tuple[int, int] -> (int, 2).

    The dataclass annotations are strings under ``from __future__ import annotations``.
    """
    if isinstance(annotation, str):
        annotation = eval(
            annotation, {"tuple": tuple, "float": float, "int": int, "str": str, "bool": bool}
        )
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        return args[0], len(args)
    return annotation, None


def _shown(value: Any) -> str:
    """A default as the user would type it: ``0.9 0.999`` for a pair."""
    return " ".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def argument_kwargs(field: dataclasses.Field) -> dict[str, Any]:
    """argparse keywords of one RunConfig field, from its type, default and Spec."""
    spec = spec_of(field)
    kind, nargs = _base_type(field.type)
    text = help_of(field)
    kwargs: dict[str, Any] = {"dest": field.name, "help": text}
    if kind is bool:  # a switch: --name sets True, or --no-name clears a True default
        return kwargs | {"action": "store_false" if field.default else "store_true"}
    kwargs |= {"type": kind, "default": field.default, "choices": choices_of(field)}
    if nargs is not None:
        kwargs["nargs"] = nargs
    # A help text that names its own default ("default: --seed") keeps it.
    if "default:" not in text:
        kwargs["help"] = f"{text} (default: {_shown(field.default)})"
    return kwargs | dict(spec.cli)


def add_config_arguments(
    parser: argparse.ArgumentParser,
    exclude: Iterable[str] = (),
    config: type[RunConfig] = RunConfig,
) -> None:
    """One flag per field of ``config`` (``exclude`` lists fields a caller sets another way)."""
    excluded = set(exclude)
    for f in dataclasses.fields(config):
        if f.name not in excluded:
            parser.add_argument(flag(f.name), **argument_kwargs(f))


def config_from_args(
    args: argparse.Namespace, config: type[RunConfig] = RunConfig, **overrides: Any
) -> RunConfig:
    """The config of the parsed flags (attributes that are not fields are ignored), with
    ``overrides`` taking precedence."""
    names = {f.name for f in dataclasses.fields(config)}
    values = {k: v for k, v in vars(args).items() if k in names}
    return config(**(values | overrides))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train one model with one optimizer setting",
        description="Train a CIFAR ResNet/DenseNet (or on synthetic data) and write a run directory "
        "with config.json, metrics.jsonl, stats/, checkpoint.pt and result.json.",
    )
    add_config_arguments(p)
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    add_tracker_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scalefree.train.distributed import init_from_env, shutdown
    from scalefree.train.trainer import train

    config = config_from_args(args)
    callbacks = tracker_callbacks(settings_from_args(args))  # a missing extra: exit 2 now
    ctx = init_from_env(config)
    try:
        outcome = train(config, resume=args.resume, ctx=ctx, callbacks=callbacks)
    finally:
        shutdown(ctx)
    if not ctx.is_main:
        return 0 if outcome.result["status"] == "completed" else 1
    r = outcome.result
    if outcome.skipped:
        print(f"already complete ({r['status']}): {outcome.run_dir}")
        return 0
    last = r.get("last_evaluation") or {}
    print(f"status: {r['status']}" + (f" ({r['message']})" if r.get("message") else ""))
    if last:
        print(
            f"train loss {last['train_loss']:.4f}  train acc {last['train_acc']:.4f}  "
            f"{r['eval_split']} loss {last['test_loss']:.4f}  {r['eval_split']} acc {last['test_acc']:.4f}"
        )
    print(f"epochs {r['epochs_completed']}  steps {r['steps']}  time {r['wall_time_s']:.1f}s")
    print(f"run directory: {outcome.run_dir}")
    return 0 if r["status"] == "completed" else 1
