"""The paper's CIFAR figures as sweeps: ``scalefree reproduce fig2 ... fig6``.

Each preset is the grid search behind one figure of Zhuang et al. (TMLR 2022), with the
training settings of the reference code's commands: batch size 128, evaluation every epoch, no
learning-rate schedule (eta_t = 1), update statistics every 1000 iterations, 300 epochs.

Grid (Section 4, "Hyperparameter tuning"): eta0 in {5e-5, 1e-4, 5e-4, 1e-3, 5e-3} x weight decay
in {0, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3}, one grid per optimizer. Where a reference command names a
best setting outside that grid (the paper extended its grid there), the grid of that optimizer
is grown along the 1-5 per decade pattern until it covers it, e.g. Figure 4's AdamL2 with the
loss x100 gets weight decays up to 0.1. Boundary extension (the paper's "we always extend the
grid") is on by default, so the final best points end up inside the grid.

=========  =================================================================================
preset     experiments (CIFAR10 for ResNets, CIFAR100 for DenseNet-BC-100)
=========  =================================================================================
fig2       Figure 2: AdamL2 vs AdamW with BN: ResNet20/56/110/218, DenseNetBC100
fig3       Figure 3: AdamL2 vs AdamW without BN: ResNet20/44/56/110/218, DenseNetBC100
fig4       Figure 4: AdamL2 vs AdamW, ResNet110 without BN, loss x10 and x100
fig5       Figure 5: AdamW vs AdamProx without BN: ResNet110 (300 epochs), DenseNetBC100 (100)
fig6       Figure 6: AdamW vs AdamProxL2, ResNet110 without BN
=========  =================================================================================

One preset is not a figure of the paper but the experiment a user of the weight-decay rules
proposed since 2022 would run first:

===========  ===============================================================================
decay-rules  AdamW vs AdamC vs CWD vs CAdamW vs AdamProx, ResNet20 without BN on CIFAR10,
             eta0 {5e-4, 1e-3, 5e-3} x decay timescale {10, 50, 100} epochs
===========  ===============================================================================

Its second axis is the decay timescale (Wang & Aitchison 2024), not lambda: the rules scale
lambda differently (AdamC's s = lambda lr_t^2 / alpha), so equal lambdas are not comparable
settings, while equal timescales are (each run's first step decays by 1 / (timescale x steps per
epoch)). The paper's ResNet20 (no BN) AdamW setting, eta0 1e-3 and lambda 5e-5 per step, is a
timescale of 1 / (5e-5 x 391) = 51 epochs on CIFAR-10: the grid's middle column. A method label
with switches (``AdamW+CWD``: AdamW with --cautious-decay; :func:`scalefree.rundir.summary.
method_settings`) is how a preset method carries options.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from scalefree.cli_flags import add_int
from scalefree.errors import UsageError
from scalefree.rundir.summary import TIMESCALE_AXIS, WEIGHT_DECAY_AXIS, DecayAxis
from scalefree.sweep.grid import (
    PAPER_ETA0S,
    PAPER_WEIGHT_DECAYS,
    Axes,
    Sweep,
    next_grid_value,
    same_value,
    validate_methods,
    validate_seeds,
)
from scalefree.train.config import RunConfig, config_fields, spec_of

DEFAULT_MAX_EXTENSIONS = 5  # Figure 4's AdamL2 (loss x100) moved 4 steps beyond the base grid


@dataclass(frozen=True)
class Experiment:
    """One experiment configuration of a figure (one heatmap panel, or a pair of them).

    ``reference`` maps an optimizer to the (eta0, weight decay) of its reference command.
    """

    model: str
    batch_norm: bool
    loss_multiplier: float = 1.0
    epochs: int = 300
    reference: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def dataset(self) -> str:
        return "CIFAR100" if self.model.startswith("DenseNet") else "CIFAR10"


# The reference commands' training settings, fixed by every paper preset: batch size 128,
# evaluation every epoch, no learning-rate schedule, update statistics every 1000 iterations.
PAPER_RUN: Mapping[str, Any] = MappingProxyType(
    {
        "batchsize": 128,
        "eval_interval": 1,
        "scheduler": "None",
        "store_stats": True,
        "store_stats_interval": 1000,
    }
)

# RunConfig fields every sweep preset sets itself, so they are not flags of ``reproduce <preset>``:
# the grid (methods x eta0 x weight decay x --seeds), the experiment (model, BN, loss multiplier,
# --epochs), --dataset and --log-folder (the preset's own defaults), --iters (max steps) and the
# runs' progress display (off: --progress is the sweep's).
PRESET_OWN = frozenset(
    {
        "optim_method",
        "eta0",
        "weight_decay",
        "decay_timescale",
        "seed",
        "model",
        "batch_norm",
        "loss_multiplier",
        "train_epochs",
        "dataset",
        "log_folder",
        "max_steps",
        "progress",
    }
)


@dataclass(frozen=True)
class FigurePreset:
    """One sweep preset of ``scalefree reproduce``: a grid per experiment, then the report.

    ``fixed`` holds the run settings the preset decides (not flags); every other RunConfig field
    is a flag of the preset, generated like ``scalefree train``'s. ``methods`` are optimizer
    names or method labels with switches (``AdamW+CWD``). The grid is ``eta0s`` x
    ``decay_values`` on ``decay_axis`` (the paper's eta0 x weight decay unless a preset says
    otherwise).
    """

    name: str
    help: str
    methods: tuple[str, ...]
    experiments: tuple[Experiment, ...]
    fixed: Mapping[str, Any] = field(default_factory=lambda: PAPER_RUN)
    eta0s: tuple[float, ...] = PAPER_ETA0S
    decay_values: tuple[float, ...] = PAPER_WEIGHT_DECAYS
    decay_axis: DecayAxis = WEIGHT_DECAY_AXIS
    # A method's own decay values where they differ from ``decay_values`` (AdamL2's lambda and
    # AdamW's live on scales a decade apart), and the seeds its best point is run with again.
    method_decay_values: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    best_seeds: tuple[int, ...] = ()

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.model for e in self.experiments))


_L2W = ("AdamL2", "AdamW")
FIGURES: dict[str, FigurePreset] = {
    p.name: p
    for p in (
        FigurePreset(
            "fig2",
            "Figure 2: AdamL2 vs AdamW with batch norm, ResNet20/56/110/218 on CIFAR10 and "
            "DenseNetBC100 on CIFAR100 (paper Section 4.1; the reference code's commands with BN)",
            _L2W,
            (
                Experiment("ResNet20", True),
                Experiment("ResNet56", True),
                Experiment("ResNet110", True, reference={"AdamL2": (5e-3, 0), "AdamW": (5e-3, 0)}),
                Experiment("ResNet218", True),
                Experiment("DenseNetBC100", True, reference={"AdamL2": (5e-3, 0)}),
            ),
        ),
        FigurePreset(
            "fig3",
            "Figure 3: AdamL2 vs AdamW without batch norm, ResNet20/44/56/110/218 on CIFAR10 and "
            "DenseNetBC100 on CIFAR100, with update statistics (Section 4.1; the reference code's NoBN "
            "commands)",
            _L2W,
            (
                Experiment(
                    "ResNet20", False, reference={"AdamL2": (1e-3, 5e-4), "AdamW": (1e-3, 5e-5)}
                ),
                Experiment(
                    "ResNet44", False, reference={"AdamL2": (5e-4, 5e-4), "AdamW": (5e-4, 5e-5)}
                ),
                Experiment(
                    "ResNet56", False, reference={"AdamL2": (5e-4, 5e-4), "AdamW": (5e-4, 5e-5)}
                ),
                Experiment(
                    "ResNet110", False, reference={"AdamL2": (1e-3, 5e-4), "AdamW": (5e-4, 1e-4)}
                ),
                Experiment(
                    "ResNet218", False, reference={"AdamL2": (5e-4, 5e-3), "AdamW": (5e-4, 5e-5)}
                ),
                Experiment(
                    "DenseNetBC100",
                    False,
                    reference={"AdamL2": (5e-4, 1e-3), "AdamW": (1e-3, 5e-5)},
                ),
            ),
        ),
        FigurePreset(
            "fig4",
            "Figure 4: AdamL2 vs AdamW on ResNet110 without batch norm with the loss multiplied "
            "by 10 and by 100 (Section 4.2; the reference code's Loss_Mul commands)",
            _L2W,
            (
                Experiment(
                    "ResNet110",
                    False,
                    loss_multiplier=10.0,
                    reference={"AdamL2": (1e-3, 5e-3), "AdamW": (5e-4, 1e-4)},
                ),
                Experiment(
                    "ResNet110",
                    False,
                    loss_multiplier=100.0,
                    reference={"AdamL2": (1e-4, 0.1), "AdamW": (5e-4, 1e-4)},
                ),
            ),
        ),
        FigurePreset(
            "fig5",
            "Figure 5: AdamW vs AdamProx without batch norm, ResNet110 on CIFAR10 (300 epochs) "
            "and DenseNetBC100 on CIFAR100 (100 epochs), constant schedule (Section 4.3)",
            ("AdamW", "AdamProx"),
            (
                Experiment("ResNet110", False),
                Experiment("DenseNetBC100", False, epochs=100),
            ),
        ),
        FigurePreset(
            "fig6",
            "Figure 6: AdamW vs AdamProxL2 (non-squared L2 prox) on ResNet110 without batch norm "
            "(Section 5)",
            ("AdamW", "AdamProxL2"),
            (Experiment("ResNet110", False),),
        ),
        FigurePreset(
            "decay-rules",
            "weight-decay rules since 2022 side by side: AdamW, AdamC (corrected decay), "
            "CWD (cautious weight decay), CAdamW (cautious updates) and AdamProx on "
            "ResNet20 without batch norm on CIFAR10, eta0 x decay timescale (epochs), update "
            "statistics on, then the report",
            ("AdamW", "AdamC", "CWD", "CAdamW", "AdamProx"),
            (Experiment("ResNet20", False),),
            # A cosine schedule: with a constant lr, the corrected decay (lambda lr_t^2 / alpha) is
            # the lr convention's, so at equal timescales AdamC would be AdamW step for step (a
            # constant-lr CPU run showed identical errors); the rules differ as the lr decays. The
            # rules are the methods' own (CWD, CAdamW), so the switches are not flags.
            fixed=MappingProxyType(
                dict(PAPER_RUN) | {"scheduler": "Cosine", "cautious_decay": False, "caution": False}
            ),
            eta0s=(5e-4, 1e-3, 5e-3),
            decay_values=(10.0, 50.0, 100.0),
            decay_axis=TIMESCALE_AXIS,
        ),
    )
}


def covering_values(base: Sequence[float], target: float) -> tuple[float, ...]:
    """``base`` grown along the 1-5 per decade pattern until it reaches ``target`` (contiguous, so
    the grid has no hole between the paper's values and a reference best value)."""
    values = sorted(float(v) for v in base)
    if any(same_value(target, v) for v in values):
        return tuple(values)
    positive = [v for v in values if v > 0]
    if target > 0 and positive:
        while target > values[-1]:
            values.append(next_grid_value(values[-1], up=True))
        while target < positive[0]:
            positive.insert(0, next_grid_value(positive[0], up=False))
            values.append(positive[0])
    if not any(
        same_value(target, v) for v in values
    ):  # 0, or a value off the pattern: add it as is
        values.append(float(target))
    return tuple(sorted(values))


def preset_axes(experiment: Experiment, method: str, preset: FigurePreset | None = None) -> Axes:
    """A method's grid in one experiment: the preset's (the paper's by default), grown to cover
    the method's reference setting."""
    eta0s = PAPER_ETA0S if preset is None else preset.eta0s
    values = PAPER_WEIGHT_DECAYS
    if preset is not None:
        values = preset.method_decay_values.get(method, preset.decay_values)
    ref = experiment.reference.get(method)
    if ref is None:
        return Axes(eta0s, values)
    return Axes(covering_values(eta0s, ref[0]), covering_values(values, ref[1]))


def experiments_for(preset: FigurePreset, models: Sequence[str] | None) -> list[Experiment]:
    """The preset's experiments, restricted to ``models``; a model the figure does not show gets
    the settings of the figure's first model (without reference points)."""
    if not models:
        return list(preset.experiments)
    from scalefree.models import MODELS

    out: list[Experiment] = []
    for name in models:
        try:
            model = MODELS.canonical(name)
        except UsageError as exc:
            raise UsageError(f"--models: {exc}") from None
        own = [e for e in preset.experiments if e.model == model]
        if not own:
            first = preset.experiments[0].model
            own = [
                Experiment(model, e.batch_norm, e.loss_multiplier, e.epochs)
                for e in preset.experiments
                if e.model == first
            ]
        out += [e for e in own if e not in out]
    return out


def build_sweeps(preset: FigurePreset, args: argparse.Namespace) -> list[Sweep]:
    """One :class:`Sweep` per experiment of the preset, from the parsed flags."""
    seeds = validate_seeds(args.seeds if args.seeds is not None else [args.seed])
    methods = validate_methods(preset.methods)
    log_folder = str(args.log_folder or Path("logs") / preset.name)
    return [
        Sweep(
            experiment_config(preset, e, args, log_folder),
            {m: preset_axes(e, m, preset) for m in methods},
            seeds,
            preset.decay_axis,
        )
        for e in experiments_for(preset, args.models)
    ]


def experiment_config(
    preset: FigurePreset, e: Experiment, args: argparse.Namespace, log_folder: str
) -> RunConfig:
    """The base RunConfig of one experiment: the train flags the user gave (or their defaults),
    then what the preset and the experiment fix."""
    from scalefree.train.cli import config_from_args

    return config_from_args(
        args,
        **preset.fixed,
        train_epochs=args.epochs or e.epochs,
        log_folder=log_folder,
        dataset=args.dataset or e.dataset,
        model=e.model,
        batch_norm=e.batch_norm,
        loss_multiplier=e.loss_multiplier,
        max_steps=args.iters,
        progress="none",
    )


def preset_excluded(preset: FigurePreset) -> frozenset[str]:
    """RunConfig fields that are not flags of the preset: its own, its fixed settings, and the
    parameters of schedules other than the one it fixes (a flag must never be a no-op)."""
    scheduler = preset.fixed.get("scheduler")
    unread = set()
    if scheduler is not None:
        for f in config_fields():
            suffix = spec_of(f).suffix
            if suffix is not None and suffix.schedulers and scheduler not in suffix.schedulers:
                unread.add(f.name)
    return PRESET_OWN | set(preset.fixed) | unread


def add_arguments(parser: argparse.ArgumentParser, preset: FigurePreset) -> None:
    """The flags of a sweep preset (``--out``, ``--iters``, ``--seed``, ``--no-plot`` come from
    ``reproduce``: report folder, max optimizer steps per run, a single seed, skip the report)."""
    from scalefree.sweep.cli import add_control_arguments, add_executor_arguments
    from scalefree.trackers import add_tracker_arguments
    from scalefree.train.cli import add_config_arguments

    g = parser.add_argument_group("figure")
    g.add_argument("--models", nargs="*", metavar="MODEL", help="only these models")
    g.add_argument(
        "--seeds",
        nargs="*",
        type=int,
        metavar="SEED",
        help="seeds (default: --seed); one initialization per seed",
    )
    add_int(g, "--epochs", "epochs per run (default: the paper's)", metavar=None)
    g.add_argument("--log-folder", type=Path, help="run folder (default: logs/<preset>)")
    g.add_argument(
        "--dataset",
        help="use this dataset for every model (e.g. synthetic for a smoke run; default: "
        "CIFAR10 for ResNets, CIFAR100 for DenseNet-BC)",
    )
    add_control_arguments(parser, extend_default=True, max_extensions=DEFAULT_MAX_EXTENSIONS)
    if preset.best_seeds:
        parser.set_defaults(best_seeds=list(preset.best_seeds))
    add_executor_arguments(parser)
    add_tracker_arguments(parser)
    settings = parser.add_argument_group(
        "run settings (scalefree train flags the preset leaves open)"
    )
    add_config_arguments(settings, preset_excluded(preset))


def run_preset(preset: FigurePreset, args: argparse.Namespace) -> int:
    """Run the preset's sweeps (the launch path of ``scalefree sweep``), then write the report
    of the log folder."""
    from scalefree.sweep.cli import launch

    report = launch(
        args,
        lambda a: build_sweeps(preset, a),
        banner=lambda sweeps: (
            f"{preset.help}\n{len(sweeps)} experiment(s) -> {sweeps[0].base.log_folder}"
        ),
    )
    if args.dry_run or args.no_plot:
        return report.exit_code
    try:
        from scalefree.plots.report import write_report
    except ImportError:
        print("no report: scalefree.plots.report is not available")
        return report.exit_code
    # reproduce's --out receives the report; by default it goes beside the runs, as for
    # `scalefree report` (nothing is written into the current folder).
    log_folder = report.sweeps[0].base.log_folder
    path = write_report(log_folder, args.out or Path(log_folder) / "report")
    print(f"report: {path}")
    return report.exit_code


__all__ = [
    "FIGURES",
    "PAPER_RUN",
    "Experiment",
    "FigurePreset",
    "add_arguments",
    "build_sweeps",
    "covering_values",
    "experiment_config",
    "experiments_for",
    "preset_axes",
    "preset_excluded",
    "run_preset",
]
