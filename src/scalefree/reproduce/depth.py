"""``scalefree reproduce depth``: the paper's depth claim (Section 4.1, Figure 3) at laptop scale.

The claims: without normalization AdamW beats AdamL2 and the gap grows with depth, while
AdamL2's normalized updates |u|/alpha are spread wider; with BN the two are on par. The preset
runs AdamL2 vs AdamW on two families, each with and without a normalization layer, on CIFAR-10
area-downsampled to 8 x 8 (``--image-size 8``) with bf16 autocast:

* fully connected nets MLP4 / MLP8 / MLP16 / MLP32 (the cheap family: the whole protocol fits a
  2-core CPU in about an hour), and
* the paper's CIFAR ResNets 20 / 56 / 110 (stated budget per sitting; resumable).

Protocol as the paper's (Section 4, "Hyperparameter tuning"), scaled: an eta0 x lambda grid per
method around the reference code's settings (AdamL2 lambda around 5e-4, AdamW around 5e-5, a
decade apart, eta0 around 1e-3), boundary extension on, one seed for the grid, then the best
point again with seeds 0, 1, 2. Every run holds out 10% of the training images (``--validation``):
the grid selects on validation error, and the study reports the official test split's error,
which each run measures once after its last step (result.json ``test_split``). The decay
convention is the paper's ("schedule"), the lr constant (no schedule), as the reference commands.

After the sweeps, :func:`write_depth_study` turns the log folder into the study's tables and
figures (see its docstring) beside the usual report.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from types import MappingProxyType

from scalefree.errors import UsageError
from scalefree.reproduce.figures import PAPER_RUN, Experiment, FigurePreset, run_preset

MLP_MODELS = ("MLP4", "MLP8", "MLP16", "MLP32")
RESNET_MODELS = ("ResNet20", "ResNet56", "ResNet110")
MLP_EPOCHS = 40
RESNET_EPOCHS = 20
SEEDS = (0, 1, 2)

# Settings every run of both presets shares: the reference commands' (batch size 128, constant
# lr, statistics), CIFAR-10 area-downsampled to 8x8, bf16 autocast, a 10% validation split, the
# paper's decay convention, and no augmentation: with the random crop, no model of the pilot
# reached a converged training loss in 40 epochs at 8x8 (docs/results/depth-cpu-8px).
DEPTH_RUN = MappingProxyType(
    dict(PAPER_RUN)
    | {
        "image_size": 8,
        "amp": "bf16",
        "validation": True,
        "decay_convention": "schedule",
        "augment": False,
    }
)

DEPTH = FigurePreset(
    "depth",
    "the paper's depth claim at laptop scale, the whole protocol on fully connected nets: "
    "AdamL2 vs AdamW on MLP4..MLP32 with and without BatchNorm, CIFAR-10 at 8x8, bf16, 40 epochs; "
    "3x3 grid selected on a validation split, best point with 3 seeds, test error reported",
    ("AdamL2", "AdamW"),
    tuple(Experiment(m, bn, epochs=MLP_EPOCHS) for m in MLP_MODELS for bn in (False, True)),
    fixed=DEPTH_RUN,
    eta0s=(5e-4, 1e-3, 5e-3),
    decay_values=(1e-5, 5e-5, 1e-4),
    method_decay_values={"AdamL2": (1e-4, 5e-4, 1e-3), "AdamW": (1e-5, 5e-5, 1e-4)},
    best_seeds=SEEDS,
)

# The ResNets cost 2-6 s per epoch at 8x8 on one core, so the whole protocol (9 cells, extension,
# 3 seeds, 12 settings) does not fit a sitting: the reduced protocol fixes eta0 at the reference
# 1e-3, tries the reference lambda and twice it per method (run with --max-extensions 0), 20
# epochs, and the best of the two again with 3 seeds.
# The same methods, run settings and seeds as DEPTH; what differs:
DEPTH_RESNET = dataclasses.replace(
    DEPTH,
    name="depth-resnet",
    help="the depth claim on the paper's CIFAR ResNets 20/56/110 with and without BN (reduced "
    "protocol: eta0 1e-3, two weight decays per method, 20 epochs, 3 seeds at the best; CIFAR-10 "
    "at 8x8, bf16, validation split)",
    experiments=tuple(
        Experiment(m, bn, epochs=RESNET_EPOCHS) for m in RESNET_MODELS for bn in (False, True)
    ),
    eta0s=(1e-3,),
    decay_values=(5e-5, 1e-4),
    method_decay_values={"AdamL2": (5e-4, 1e-3), "AdamW": (5e-5, 1e-4)},
)


def run_depth(args: argparse.Namespace, preset: FigurePreset = DEPTH) -> int:
    """The sweeps and the report (:func:`run_preset`), then the study's own tables and figures."""
    for folder in getattr(args, "with_runs", []):
        if not Path(folder).is_dir():
            raise UsageError(f"--with-runs: {folder} is not a log folder (no such directory)")
    code = run_preset(preset, args)
    if args.dry_run or args.no_plot:
        return code
    from scalefree.reproduce.depth_study import write_depth_study

    log_folder = Path(args.log_folder or Path("logs") / preset.name)
    out = Path(args.out) if args.out is not None else log_folder / "report"
    for path in write_depth_study([log_folder, *getattr(args, "with_runs", [])], out):
        print(f"wrote {path}")
    return code


__all__ = [
    "DEPTH",
    "DEPTH_RESNET",
    "DEPTH_RUN",
    "MLP_MODELS",
    "RESNET_MODELS",
    "SEEDS",
    "run_depth",
]
