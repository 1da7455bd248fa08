"""RunConfig: every setting of one training run, frozen, validated, saved with every result.

Field names follow the reference CLI (the authors' ``main.py``) with ``-`` -> ``_``; the run
directory name reads like the reference log names, e.g.
``CIFAR10_ResNet110_NoBN_AdamW_Eta0_0.0005_WD_0.0001_Scheduler_None_Loss_Mul_1_Epoch_300_BatchSize_128_Seed_0_Test``.

Each field describes itself (:class:`Spec`, in the field's metadata): its help text, its choices or
check, whether it is part of the run's identity, and how it shows in the run name. The CLI flags
(``scalefree.train.cli.add_config_arguments``), the validation, :meth:`RunConfig.identity` and the
run-name suffixes are generated from that, so adding a setting is one field definition here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from scalefree.errors import UsageError
from scalefree.optim.adam_family import DECAY_CONVENTIONS
from scalefree.train.run_names import Suffix, fmt_num  # noqa: F401 (re-exported)

AMP_MODES = ("none", "bf16")
DEVICES = ("auto", "cpu", "cuda")
CHANNELS_LAST = ("auto", "on", "off")
# --compile: auto compiles where it pays for itself (scalefree.train.trainer.resolve_compile).
COMPILE_MODES = ("auto", "on", "off")
# DECAY_CONVENTIONS (imported above) are the optimizer's, one list in scalefree.optim.adam_family:
# a convention added there is a choice of --decay-convention without an edit here.
PROGRESS_MODES = ("auto", "bar", "plain", "none")
# torch.manual_seed and torch.Generator.manual_seed take seeds in [0, 2**64 - 1] (numpy's
# RandomState is never seeded from them: nothing in scalefree draws from numpy).
MAX_SEED = 2**64 - 1
# The largest step count, epoch count or batch size any loop or tensor size can hold.
MAX_COUNT = 2**62
# --divergence-factor's default: 1e3 x the first step's loss (about 2.3 for 10 classes at init, so
# the limit is ~2300). Healthy runs never come near it (a loss spike of 10-50x at too large an lr
# recovers or stays below), while an exploding run passes it within a few steps of blowing up;
# a run sitting at chance level is left alone (its error is what it is, not "diverged").
DEFAULT_DIVERGENCE_FACTOR = 1000.0

_SPEC = "scalefree"  # the key of a field's Spec in its metadata


# ------------------------------------------------------------------------------ field metadata


@dataclass(frozen=True)
class Spec:
    """What a RunConfig field says about itself.

    Args:
        help: the CLI help (a text naming its own default with ``default:`` keeps it);
            ``{choices}`` in it becomes the registry's names (:func:`help_of`).
        choices: the allowed values (CLI choices and validation), or ``module:NAME`` of a
            registry whose names they are (exact spelling, read when used: an entry added later
            is a choice).
        check: returns the requirement a value fails (``"a positive integer"``), None when valid;
            a field whose default is None accepts None (unset) without a check.
        convert: normalizes a value first (JSON lists -> tuples, legacy values).
        identity: part of what the run computes; False for settings of how or where it runs and
            for bookkeeping, which are left out of the identity and the name (a run resumes on
            another device in the same directory).
        suffix: how the field shows in the run name (None: not at all, or a fixed part of the
            reference layout written by :meth:`RunConfig.run_name` itself).
        flag: the CLI flag when it is not ``--field-name``.
        registry: ``module:NAME`` of a registry whose ``canonical`` spelling the value takes.
        cli: extra argparse keywords (``nargs``, ``const``, ``metavar``).
    """

    help: str
    choices: tuple[str, ...] | str | None = None
    check: Callable[[Any], str | None] | None = None
    convert: Callable[[Any], Any] | None = None
    identity: bool = True
    suffix: Suffix | None = None
    flag: str | None = None
    registry: str | None = None
    cli: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def setting(default: Any, help: str, **spec: Any) -> Any:
    """A RunConfig field with its :class:`Spec` (``dataclasses.field`` with metadata)."""
    return dataclasses.field(default=default, metadata={_SPEC: Spec(help, **spec)})


def spec_of(field: dataclasses.Field | str) -> Spec:
    """The Spec of a RunConfig field (or of a field object of a subclass)."""
    if isinstance(field, str):
        field = _FIELDS[field]
    return field.metadata[_SPEC]


def registry_at(where: str) -> Any:
    """The registry a Spec names as ``module:NAME`` (imported when first asked for)."""
    import importlib

    module, attr = where.split(":")
    return getattr(importlib.import_module(module), attr)


def choices_of(field: dataclasses.Field | str) -> tuple[str, ...] | None:
    """A field's allowed values: its own tuple, or the names of the registry it names."""
    choices = spec_of(field).choices
    return registry_at(choices).names() if isinstance(choices, str) else choices


def help_of(field: dataclasses.Field | str) -> str:
    """A field's help with ``{choices}`` replaced by its registry's (or its choices') names."""
    spec = spec_of(field)
    if "{choices}" not in spec.help:
        return spec.help
    where = spec.registry
    names = registry_at(where).names() if where is not None else choices_of(field) or ()
    return spec.help.replace("{choices}", ", ".join(names))


# ------------------------------------------------------------------------------------- checks


def _is_number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _number(requirement: str, ok: Callable[[float], bool]) -> Callable[[Any], str | None]:
    """A finite number (not a bool) for which ``ok`` holds."""
    return lambda v: None if _is_number(v) and ok(float(v)) else requirement


def _count(v: Any) -> str | None:
    """A positive integer that any loop or tensor size can hold."""
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        return "a positive integer"
    return "a positive integer of at most 2**62" if v > MAX_COUNT else None


def _seed(v: Any) -> str | None:
    ok = not isinstance(v, bool) and isinstance(v, int) and 0 <= v <= MAX_SEED
    return None if ok else f"an integer from 0 to 2**64 - 1 = {MAX_SEED}"


def _betas(v: Any) -> str | None:
    ok = len(v) == 2 and all(math.isfinite(b) and 0.0 <= b < 1.0 for b in v)
    return None if ok else "two numbers in [0, 1)"


def _sizes(v: Any) -> str | None:
    ok = isinstance(v, tuple) and len(v) == 2 and all(_count(n) is None for n in v)
    return None if ok else "two positive integers (N_TRAIN N_TEST)"


POSITIVE = _number("a positive finite number", lambda v: v > 0)
NON_NEGATIVE = _number("a non-negative finite number", lambda v: v >= 0)


def _legacy_compile(v: Any) -> Any:
    """config.json of runs made when --compile was a switch: true / false = on / off."""
    if isinstance(v, bool):
        return "on" if v else "off"
    return v


def _floats(v: Any) -> Any:
    """JSON lists back to the tuple of floats the field holds."""
    return tuple(float(x) for x in v)


def _tuple(v: Any) -> Any:
    """JSON lists back to a tuple; elements are kept as they are, so a non-integer is named by
    the check instead of being truncated."""
    return tuple(v) if isinstance(v, (list, tuple)) else v


# ----------------------------------------------------------------------------------- RunConfig


@dataclass(frozen=True)
class RunConfig:
    # --- the reference code's flags, same meanings ---
    optim_method: str = setting(
        "AdamW", "optimizer: {choices}", registry="scalefree.optim:OPTIMIZERS"
    )
    eta0: float = setting(1e-3, "initial step size alpha", check=POSITIVE)
    weight_decay: float = setting(
        0.0,
        "weight decay lambda (L2 coefficient for AdamL2 and the torch baselines)",
        check=NON_NEGATIVE,
    )
    train_epochs: int = setting(
        300,
        "number of training epochs (the reference's 300 are hours of CPU time even for "
        "ResNet20; the run prints its expected length after the first steps)",
        check=_count,
    )
    batchsize: int = setting(128, "mini-batch size (the global batch under DDP)", check=_count)
    eval_interval: int = setting(
        1,
        "evaluate train and test sets every N epochs (and after the last)",
        check=_count,
        identity=False,
    )
    use_cuda: bool = setting(
        False,
        "train on the GPU (the reference's flag; warns and uses the CPU when there is none)",
        identity=False,
    )
    log_folder: str = setting("logs", "folder that receives the run directory", identity=False)
    dataroot: str = setting(
        "data", "folder holding cifar-10-batches-py/ or cifar-100-python/", identity=False
    )
    dataset: str = setting("CIFAR10", "dataset: {choices}", registry="scalefree.data:DATASETS")
    model: str = setting("ResNet20", "network: {choices}", registry="scalefree.models:MODELS")
    batch_norm: bool = setting(True, "remove every BatchNorm layer", flag="--no-batch-norm")
    scheduler: str = setting(
        "None",
        "learning-rate schedule, stepped once per epoch",
        choices="scalefree.train.schedulers:SCHEDULERS",
    )
    store_stats: bool = setting(
        False,
        "record update-magnitude histograms (stats/ in the run directory)",
        identity=False,
    )
    store_stats_interval: int = setting(
        1000,
        "record statistics at in-epoch iterations 0, k, 2k, ...",
        check=_count,
        identity=False,
    )
    loss_multiplier: float = setting(
        1.0, "multiply the training loss (and reported losses) by c", check=POSITIVE
    )
    validation: bool = setting(
        False,
        "hold out --val-ratio of the training set and evaluate on it instead of the test set",
    )
    val_ratio: float = setting(
        0.1,
        "fraction of the training set held out by --validation",
        check=_number("strictly between 0 and 1", lambda v: 0.0 < v < 1.0),
    )
    reproducible: bool = setting(
        False, "deterministic algorithms (bitwise-reproducible runs on the CPU)", identity=False
    )
    seed: int = setting(
        0,
        "seed of data order, augmentation and (unless --init-seed) initial weights",
        check=_seed,
    )
    # --- scalefree's own ---
    device: str = setting("auto", "where to train", choices=DEVICES, identity=False)
    amp: str = setting(
        "none",
        "mixed precision: none or bf16 autocast",
        choices=AMP_MODES,
        suffix=Suffix.named("AMP", "none", 70),
    )
    compile: str = setting(
        "auto",
        "torch.compile the training model: on (also --compile alone), off, or auto: on where it "
        "pays for itself (a C++ compiler or Triton present, a run long enough to earn back the "
        "compile time, not --reproducible)",
        choices=COMPILE_MODES,
        convert=_legacy_compile,
        identity=False,
        cli={"nargs": "?", "const": "on"},  # was a switch: --compile alone still means on
    )
    channels_last: str = setting(
        "auto",
        "channels_last (NHWC) memory format: on, off, or auto, which is on for both CUDA and the "
        "CPU (NHWC convolutions measured faster on each: benchmarks/RESULTS.md)",
        choices=CHANNELS_LAST,
        identity=False,
    )
    download: bool = setting(
        False, "download CIFAR from the official URL (MD5-verified) if missing", identity=False
    )
    decay_convention: str = setting(
        "schedule",
        "how lambda becomes the decay strength s of a step (lr_0 = --eta0, lr_t = the scheduled "
        "lr): schedule: s = lambda*lr_t/lr_0 (paper); lr: s = lambda*lr_t (torch AdamW); "
        "corrected: s = lambda*lr_t^2/lr_0 (AdamC, Defazio 2025)",
        choices=DECAY_CONVENTIONS,
        suffix=Suffix.named("Decay", "schedule", 10),
    )
    # Passed to the optimizer only when set, so runs without them build the optimizer as before;
    # an optimizer that does not take them refuses them (build_optimizer: a usage error).
    cautious_decay: bool = setting(
        False,
        "cautious weight decay (Chen et al. 2025): decay only coordinates where the update and "
        "the weight have the same sign",
        suffix=Suffix.switch("CWD", False, 22),
    )
    caution: bool = setting(
        False,
        "cautious update masking (Liang et al. 2024, C-AdamW): drop update coordinates whose "
        "momentum and gradient disagree in sign",
        suffix=Suffix.switch("Caution", False, 24),
    )
    decay_timescale: float | None = setting(
        None,
        "set lambda so that the decay's EMA timescale 1/s_0 is EPOCHS epochs of this run's "
        "optimizer steps (Wang & Aitchison 2024), s_0 the first step's strength in the active "
        "--decay-convention; instead of --weight-decay; decoupled and proximal decay only "
        "(default: unset, --weight-decay is lambda)",
        check=POSITIVE,
        suffix=Suffix.named("Timescale", None, 26),
        cli={"metavar": "EPOCHS"},
    )
    amsgrad: bool = setting(
        False,
        "AMSGrad variant (Adam family and Adam)",
        suffix=Suffix.switch("AMSGrad", False, 20),
    )
    betas: tuple[float, float] = setting(
        (0.9, 0.999),
        "Adam's beta1 beta2",
        check=_betas,
        convert=_floats,
        suffix=Suffix.named("Betas", (0.9, 0.999), 30),
        cli={"metavar": ("BETA1", "BETA2")},
    )
    eps: float = setting(
        1e-8,
        "Adam's epsilon (0 allowed: exact scale-freeness)",
        check=NON_NEGATIVE,
        suffix=Suffix.named("Eps", 1e-8, 40),
    )
    no_decay_bias_norm: bool = setting(
        False,
        "do not decay biases and normalization parameters",
        suffix=Suffix.switch("NoDecayBiasNorm", False, 50),
    )
    init_seed: int | None = setting(
        None,
        "seed of the stored initial weights (default: --seed)",
        check=_seed,
        suffix=Suffix.named("InitSeed", None, 60),
    )
    lr_step_size: int = setting(
        100,
        "Step scheduler: epochs between decays",
        check=_count,
        suffix=Suffix.named("StepSize", 100, 100, schedulers=("Step",)),
    )
    lr_gamma: float = setting(
        0.1,
        "Step/Exponential scheduler: decay factor",
        check=_number("in (0, 1]", lambda v: 0.0 < v <= 1.0),
        suffix=Suffix.named("Gamma", 0.1, 110, ("Step", "Exponential")),
    )
    lr_power: float = setting(
        1.0,
        "Polynomial scheduler: power",
        check=_number("a positive number", lambda v: v > 0),
        suffix=Suffix.named("Power", 1.0, 120, schedulers=("Polynomial",)),
    )
    max_steps: int | None = setting(
        None,
        "stop after this many optimizer steps (smoke tests; default: no limit)",
        check=_count,
        suffix=Suffix.named("MaxSteps", None, 80),
    )
    progress: str = setting(
        "auto",
        "progress display: auto (bar on a terminal, a line per epoch otherwise), bar, plain, none",
        choices=PROGRESS_MODES,
        identity=False,
    )
    divergence_factor: float = setting(
        DEFAULT_DIVERGENCE_FACTOR,
        "stop the run as diverged when its training loss exceeds this times the first step's "
        "loss, or is not finite",
        check=_number("a finite number > 1", lambda v: v > 1),
        suffix=Suffix.named("DivFactor", DEFAULT_DIVERGENCE_FACTOR, 90),
    )
    # Changes what the run computes (the data), so it is part of the identity and the name; left
    # out of the name when unset, so the names of runs on the datasets' own sizes stay as they were.
    synthetic_sizes: tuple[int, int] | None = setting(
        None,
        "sizes of the synthetic dataset's training and test sets, for smoke runs (--dataset "
        "synthetic only; default: 2560 512)",
        check=_sizes,
        convert=_tuple,
        suffix=Suffix.named("Synthetic", None, 130),
        cli={"metavar": ("N_TRAIN", "N_TEST")},
    )

    # Changes the data, so it is part of the identity and the name (only when set: the names of
    # full-size runs stay as they were). 32 is the datasets' own size and is stored as unset.
    image_size: int | None = setting(
        None,
        "area-downsample the images to this side first (one of 4, 8, 16; default: the "
        "datasets' own 32); the crop's padding scales along (side / 8 pixels)",
        check=lambda v: None if v in (4, 8, 16) else "one of 4, 8, 16 (32 is the default)",
        convert=lambda v: None if v == 32 else v,
        suffix=Suffix.named("Img", None, 135),
        cli={"type": int, "metavar": "SIDE"},
    )

    # The training set's random crop and flip (Lee et al. 2015). Off, a small set is fit within a
    # short budget (the depth study's converged training loss); part of the identity and the name.
    augment: bool = setting(
        True,
        "turn off the training augmentation (random crop of the zero-padded image and "
        "horizontal flip)",
        flag="--no-augment",
        suffix=Suffix.switch("NoAug", True, 136),
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            convert = spec_of(f).convert
            if convert is not None:
                object.__setattr__(self, f.name, convert(getattr(self, f.name)))
        _validate(self)
        _canonicalize(self)
        if self.synthetic_sizes is not None and self.dataset != "synthetic":
            raise UsageError("--synthetic-sizes applies only to --dataset synthetic")
        if self.decay_timescale is not None:
            _check_timescale(self)

    # ---------------------------------------------------------------- identity
    @property
    def effective_init_seed(self) -> int:
        return self.seed if self.init_seed is None else self.init_seed

    def run_name(self) -> str:
        """The run directory's name: the reference's layout, then the suffixes of the settings
        the reference did not have (only where they differ from their Suffix.omit_at, so the
        reference's names stay exactly as they were and distinct configs never share a folder)."""
        parts = [self.dataset, self.model]
        if not self.batch_norm:
            parts.append("NoBN")
        parts += [self.optim_method, "Eta0", fmt_num(self.eta0), "WD", fmt_num(self.weight_decay)]
        parts += ["Scheduler", self.scheduler, "Loss_Mul", fmt_num(self.loss_multiplier)]
        parts += ["Epoch", str(self.train_epochs), "BatchSize", str(self.batchsize)]
        parts += ["Seed", str(self.seed)]
        for name, suffix in _suffixes(type(self)):
            part = suffix.part(getattr(self, name), self.scheduler)
            if part is not None:
                parts.append(part)
        parts += ["Val", fmt_num(self.val_ratio)] if self.validation else ["Test"]
        return "_".join(parts)

    # ---------------------------------------------------------------- (de)serialization
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: tuples become lists (config.json)."""
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """From config.json; keys of fields added since take their defaults, unknown keys are
        ignored, and legacy values are converted by each field's Spec.convert."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def identity(self) -> dict[str, Any]:
        """The settings that determine what the run computes (used to match a resumed run)."""
        execution = execution_fields(type(self))
        return {k: v for k, v in self.to_dict().items() if k not in execution}


@functools.cache
def execution_fields(cls: type[RunConfig]) -> frozenset[str]:
    """Fields that change how a run is executed but not what it computes (or that are
    bookkeeping): left out of the identity and the run name, so e.g. resuming on another device
    finds the same directory."""
    return frozenset(f.name for f in dataclasses.fields(cls) if not spec_of(f).identity)


@functools.cache
def _suffixes(cls: type[RunConfig]) -> tuple[tuple[str, Suffix], ...]:
    named = [(f.name, spec_of(f).suffix) for f in dataclasses.fields(cls)]
    return tuple(sorted(((n, s) for n, s in named if s is not None), key=lambda ns: ns[1].rank))


_FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(RunConfig)}
EXECUTION_FIELDS = execution_fields(RunConfig)


def flag(field_name: str) -> str:
    """The CLI flag for a config field (for error messages)."""
    field = _FIELDS.get(field_name)
    own = spec_of(field).flag if field is not None else None
    return own or "--" + field_name.replace("_", "-")


def _validate(c: RunConfig) -> None:
    """Each field's choices and check, in field order; the first failure is the error."""
    for f in dataclasses.fields(c):
        name = f.name
        spec, value = spec_of(f), getattr(c, name)
        if value is None and f.default is None:
            continue  # unset
        choices = choices_of(f)
        if choices is not None and value not in choices:
            raise UsageError(f"{flag(name)} must be one of {', '.join(choices)}, got {value!r}")
        requirement = spec.check(value) if spec.check is not None else None
        if requirement is not None:
            raise UsageError(f"{flag(name)} must be {requirement}, got {value!r}")


def _canonicalize(c: RunConfig) -> None:
    """Registry names in their canonical spelling (case-insensitive input): stable run names."""
    for f in dataclasses.fields(c):
        name, where = f.name, spec_of(f).registry
        if where is None:
            continue
        registry = registry_at(where)
        try:
            object.__setattr__(c, name, registry.canonical(getattr(c, name)))
        except UsageError as exc:
            raise UsageError(f"{flag(name)}: {exc}") from None


def _check_timescale(c: RunConfig) -> None:
    """--decay-timescale sets lambda: a second lambda is a contradiction, and a rule whose
    lambda enters the gradient (AdamL2, the torch baselines' L2 term) has no decay timescale."""
    if c.weight_decay != 0:
        raise UsageError(
            f"--decay-timescale sets the weight decay, so --weight-decay {fmt_num(c.weight_decay)} "
            "contradicts it: give one of --weight-decay and --decay-timescale"
        )
    from scalefree.optim.registry import OPTIMIZERS

    entry = OPTIMIZERS.get(c.optim_method)
    if not (entry.adam_family and not getattr(entry.factory, "decay_in_gradient", True)):
        takers = [e.name for e in OPTIMIZERS if e.adam_family and not e.factory.decay_in_gradient]
        raise UsageError(
            f"--decay-timescale needs decoupled or proximal weight decay, and {c.optim_method}'s "
            f"lambda is an L2 term in the gradient (no decay timescale): use --weight-decay, or "
            f"one of {', '.join(takers)}"
        )


def config_fields() -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(RunConfig)


__all__ = [
    "EXECUTION_FIELDS",
    "RunConfig",
    "Spec",
    "Suffix",
    "choices_of",
    "config_fields",
    "execution_fields",
    "flag",
    "fmt_num",
    "help_of",
    "registry_at",
    "setting",
    "spec_of",
]
