"""RunConfig: every setting of one training run, frozen, validated, saved with every result.

Field names follow the reference CLI (seed 000) with ``-`` -> ``_``; the run directory name reads
like the reference log names, e.g.
``CIFAR10_ResNet110_NoBN_AdamW_Eta0_0.0005_WD_0.0001_Scheduler_None_Loss_Mul_1_Epoch_300_BatchSize_128_Seed_0_Test``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from scalefree.errors import UsageError

SCHEDULERS = ("None", "Cosine", "Step", "Exponential", "Polynomial")
AMP_MODES = ("none", "bf16")
DEVICES = ("auto", "cpu", "cuda")
CHANNELS_LAST = ("auto", "on", "off")
# --compile: auto compiles where it pays for itself (scalefree.train.trainer.resolve_compile).
COMPILE_MODES = ("auto", "on", "off")
DECAY_CONVENTIONS = ("schedule", "lr")
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

# Fields that change how a run is executed but not what it computes (or that are bookkeeping):
# they are left out of the run name, so e.g. resuming on another device finds the same directory.
EXECUTION_FIELDS = frozenset(
    {
        "use_cuda",
        "device",
        "log_folder",
        "dataroot",
        "download",
        "compile",
        "channels_last",
        "eval_interval",
        "reproducible",
        "store_stats",
        "store_stats_interval",
        "progress",
    }
)


@dataclass(frozen=True)
class RunConfig:
    # --- the reference code's flags (seed 000), same meanings ---
    optim_method: str = "AdamW"
    eta0: float = 1e-3
    weight_decay: float = 0.0
    train_epochs: int = 300
    batchsize: int = 128
    eval_interval: int = 1
    use_cuda: bool = False
    log_folder: str = "logs"
    dataroot: str = "data"
    dataset: str = "CIFAR10"
    model: str = "ResNet20"
    batch_norm: bool = True
    scheduler: str = "None"
    store_stats: bool = False
    store_stats_interval: int = 1000
    loss_multiplier: float = 1.0
    validation: bool = False
    val_ratio: float = 0.1
    reproducible: bool = False
    seed: int = 0
    # --- scalefree's own ---
    device: str = "auto"
    amp: str = "none"
    compile: str = "auto"  # auto | on | off; True / False (older config.json files) = on / off
    channels_last: str = "auto"
    download: bool = False
    decay_convention: str = "schedule"
    amsgrad: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    no_decay_bias_norm: bool = False
    init_seed: int | None = None  # seed of the stored initial weights; None = same as --seed
    lr_step_size: int = 100  # Step: epochs between decays
    lr_gamma: float = 0.1  # Step / Exponential: multiplicative factor
    lr_power: float = 1.0  # Polynomial: power
    max_steps: int | None = None  # stop after this many optimizer steps (smoke tests)
    progress: str = "auto"  # auto | bar | plain | none
    # Diverged when the training loss exceeds this times the first step's loss (or is not finite).
    divergence_factor: float = DEFAULT_DIVERGENCE_FACTOR

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if isinstance(self.compile, bool):  # config.json of runs made when --compile was a switch
            object.__setattr__(self, "compile", "on" if self.compile else "off")
        _validate(self)
        # Canonical registry names (case-insensitive input), so run names are stable.
        from scalefree.data import DATASETS
        from scalefree.models import MODELS
        from scalefree.optim import OPTIMIZERS

        for name, registry in (
            ("optim_method", OPTIMIZERS),
            ("model", MODELS),
            ("dataset", DATASETS),
        ):
            try:
                object.__setattr__(self, name, registry.canonical(getattr(self, name)))
            except UsageError as exc:
                raise UsageError(f"{flag(name)}: {exc}") from None

    # ---------------------------------------------------------------- identity
    @property
    def effective_init_seed(self) -> int:
        return self.seed if self.init_seed is None else self.init_seed

    def run_name(self) -> str:
        parts = [self.dataset, self.model]
        if not self.batch_norm:
            parts.append("NoBN")
        parts += [
            self.optim_method,
            "Eta0",
            fmt_num(self.eta0),
            "WD",
            fmt_num(self.weight_decay),
            "Scheduler",
            self.scheduler,
            "Loss_Mul",
            fmt_num(self.loss_multiplier),
            "Epoch",
            str(self.train_epochs),
            "BatchSize",
            str(self.batchsize),
            "Seed",
            str(self.seed),
        ]
        # Non-default settings the reference did not have: appended only when changed, so the
        # reference's names stay exactly as they were and distinct configs never share a folder.
        default = RunConfig()
        extras = [
            ("decay_convention", lambda v: f"Decay_{v}"),
            ("amsgrad", lambda v: "AMSGrad"),
            ("betas", lambda v: f"Betas_{fmt_num(v[0])}_{fmt_num(v[1])}"),
            ("eps", lambda v: f"Eps_{fmt_num(v)}"),
            ("no_decay_bias_norm", lambda v: "NoDecayBiasNorm"),
            ("init_seed", lambda v: f"InitSeed_{v}"),
            ("amp", lambda v: f"AMP_{v}"),
            ("max_steps", lambda v: f"MaxSteps_{v}"),
            ("divergence_factor", lambda v: f"DivFactor_{fmt_num(v)}"),
        ]
        if self.scheduler == "Step":
            extras += [
                ("lr_step_size", lambda v: f"StepSize_{v}"),
                ("lr_gamma", lambda v: f"Gamma_{fmt_num(v)}"),
            ]
        elif self.scheduler == "Exponential":
            extras += [("lr_gamma", lambda v: f"Gamma_{fmt_num(v)}")]
        elif self.scheduler == "Polynomial":
            extras += [("lr_power", lambda v: f"Power_{fmt_num(v)}")]
        for name, render in extras:
            value = getattr(self, name)
            if value != getattr(default, name):
                parts.append(render(value))
        if self.validation:
            parts += ["Val", fmt_num(self.val_ratio)]
        else:
            parts.append("Test")
        return "_".join(parts)

    # ---------------------------------------------------------------- (de)serialization
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        if "betas" in kwargs:
            kwargs["betas"] = tuple(kwargs["betas"])
        return cls(**kwargs)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def identity(self) -> dict[str, Any]:
        """The settings that determine what the run computes (used to match a resumed run)."""
        return {k: v for k, v in self.to_dict().items() if k not in EXECUTION_FIELDS}


def fmt_num(x: float | int) -> str:
    """Numbers as the reference's log names print them: 0.0005, 5e-05, 1 (integral floats lose .0)."""
    if isinstance(x, bool):
        return str(int(x))
    if isinstance(x, int):
        return str(x)
    x = float(x)
    if x.is_integer() and abs(x) < 1e16:
        return str(int(x))
    return repr(x)


def flag(field_name: str) -> str:
    """The CLI flag for a config field (for error messages)."""
    return {"batch_norm": "--no-batch-norm"}.get(field_name, "--" + field_name.replace("_", "-"))


def _fail(name: str, requirement: str, value: Any) -> None:
    raise UsageError(f"{flag(name)} must be {requirement}, got {value!r}")


def _validate(c: RunConfig) -> None:
    def finite(name: str, requirement: str = "a finite number") -> float:
        v = getattr(c, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            _fail(name, requirement, v)
        return float(v)

    def positive_int(name: str, allow_none: bool = False) -> None:
        v = getattr(c, name)
        if v is None and allow_none:
            return
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            _fail(name, "a positive integer", v)
        if v > MAX_COUNT:
            _fail(name, "a positive integer of at most 2**62", v)

    def choice(name: str, choices: tuple[str, ...]) -> None:
        if getattr(c, name) not in choices:
            _fail(name, f"one of {', '.join(choices)}", getattr(c, name))

    if finite("eta0", "a positive finite number") <= 0:
        _fail("eta0", "a positive finite number", c.eta0)
    if finite("weight_decay", "a non-negative finite number") < 0:
        _fail("weight_decay", "a non-negative finite number", c.weight_decay)
    if finite("loss_multiplier", "a positive finite number") <= 0:
        _fail("loss_multiplier", "a positive finite number", c.loss_multiplier)
    if finite("eps", "a non-negative finite number") < 0:
        _fail("eps", "a non-negative finite number", c.eps)
    for name in (
        "train_epochs",
        "batchsize",
        "eval_interval",
        "store_stats_interval",
        "lr_step_size",
    ):
        positive_int(name)
    positive_int("max_steps", allow_none=True)
    for name in ("seed", "init_seed"):
        v = getattr(c, name)
        if name == "init_seed" and v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_SEED:
            _fail(name, f"an integer from 0 to 2**64 - 1 = {MAX_SEED}", v)
    if finite("divergence_factor", "a finite number > 1") <= 1:
        _fail("divergence_factor", "a finite number > 1", c.divergence_factor)
    if not (0.0 < finite("val_ratio", "strictly between 0 and 1") < 1.0):
        _fail("val_ratio", "strictly between 0 and 1", c.val_ratio)
    if len(c.betas) != 2 or not all(math.isfinite(b) and 0.0 <= b < 1.0 for b in c.betas):
        _fail("betas", "two numbers in [0, 1)", c.betas)
    if not (0.0 < finite("lr_gamma", "in (0, 1]") <= 1.0):
        _fail("lr_gamma", "in (0, 1]", c.lr_gamma)
    if finite("lr_power", "a positive number") <= 0:
        _fail("lr_power", "a positive number", c.lr_power)
    choice("scheduler", SCHEDULERS)
    choice("amp", AMP_MODES)
    choice("device", DEVICES)
    choice("channels_last", CHANNELS_LAST)
    choice("compile", COMPILE_MODES)
    choice("decay_convention", DECAY_CONVENTIONS)
    choice("progress", ("auto", "bar", "plain", "none"))


def config_fields() -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(RunConfig)


__all__ = ["RunConfig", "SCHEDULERS", "fmt_num", "flag", "config_fields"]
