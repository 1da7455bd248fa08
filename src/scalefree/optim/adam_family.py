"""The Adam weight-decay family of Zhuang, Liu, Cutkosky, Orabona (TMLR 2022), one shared core.

Symbols (per parameter group) and the arguments they come from:

* alpha   = ``group["alpha"]``: the lr the group was built with (float(lr) when the group is added;
  the optimizer's own record, per group. It is *not* ``initial_lr``, which LR schedulers own:
  OneCycleLR writes ``max_lr / div_factor`` there);
* lr_t    = ``lr``: the group's current learning rate (an LR scheduler may change it);
* eta_t   = lr_t / alpha: the schedule multiplier (eta_0 = 1);
* lambda  = ``weight_decay``; beta1, beta2 = ``betas``; eps = ``eps``.

Every variant first takes the Adam step (t counts steps from 1)::

    g     = grad f            (+ lambda * x   for AdamL2 only)
    m     = beta1 * m + (1 - beta1) * g
    v     = beta2 * v + (1 - beta2) * g^2        (AMSGrad: v_max = max(v_max, v), used below)
    m_hat = m / (1 - beta1^t),   v_hat = v / (1 - beta2^t)
    D     = sqrt(v_hat) + eps                     (eps = 0 allowed: 0/0 := 0)
    u     = lr_t * m_hat / D
    s     = lambda * lr_t          (decay_convention="lr": torch.optim.AdamW's; the library default)
          = lambda * lr_t / alpha  (decay_convention="schedule": the paper's and its code's;
                                    what ``scalefree train`` and sweeps use)
          = lambda * lr_t^2 / alpha (decay_convention="corrected": AdamC, Defazio 2025)

and then applies its decay or proximal operator:

==========  ===================================================  ===========================
name        update of x                                          source
==========  ===================================================  ===========================
AdamL2      x <- x - u                                           paper, Algorithm 1
AdamW       x <- (1 - s) x - u                                   paper, eq. (4)
AdamProx    x <- (x - u) / (1 + s)                               paper, eq. (5)
AdamProxL2  y = x - u;  x <- max(1 - s / ||y||, 0) y             paper, Section 5
AdamProxL1  y = x - u;  x <- sign(y) max(|y| - s, 0)             paper, Section 5
AdamProxD   x <- (D x - lr_t m_hat) / (D + s)                    "Decay No More"
AdamC       AdamW with s = lambda lr_t^2 / alpha                 Defazio 2025
CWD         x <- x - u - s 1[u x >= 0] x                         Chen et al. 2025
CAdamW      u <- u phi / max(mean(phi), 1e-3); then AdamW        Liang et al. 2024
==========  ===================================================  ===========================

The last two are options of every family member too: ``cautious_decay=True`` (CWD: an
elementwise rule's decay/prox only on the coordinates where u * x >= 0) and ``caution=True``
(C-AdamW: phi = 1[m * g > 0], m after this step's update). docs/math.md derives why all three
stay scale-free at eps = 0 (both masks compare signs, which positive gradient scales keep).

An AdamW decay strength s >= 1 would zero or flip the weights ((1 - s) x): the step raises a
ValueError instead. The other rules shrink for every s >= 0 (for AdamProxL1/L2, s is a threshold
in the units of x), so they step
(checked in eager mode, before anything changes; a compiled step skips the check).

Defaults are torch's, so that swapping ``torch.optim.AdamW`` for ``scalefree.optim.AdamW`` keeps
the behaviour: lr=1e-3, betas=(0.9, 0.999), eps=1e-8, decay_convention="lr", weight_decay=1e-2 for
the decoupled and proximal variants, 0 for AdamL2 (like ``torch.optim.Adam``). Where this differs
from the paper: the paper (and ``scalefree train``) uses decay_convention="schedule".

How it runs fast: the Adam part is torch's own functional Adam (fused, foreach or single-tensor
kernel); AdamL2 and AdamW are *exactly* torch's math (AdamL2 = Adam with weight_decay = lambda;
AdamW = torch AdamW with weight_decay = lambda / alpha under "schedule", lambda under "lr").
AdamProx is also exactly torch AdamW's update, with lr' = lr_t/(1+s) and weight_decay' = s/lr_t.
AdamProxL1/L2/D apply their operator as a post-step on y = x - u. With eps = 0 the kernels would
turn 0/0 into NaN, so that case takes a per-tensor path that defines 0/0 = 0. The fused kernel is
used only where it is correct (see ``choose_kernels``).

Deviations from the paper, stated: AdamProxD with D = 0 and s > 0 maps the coordinate to 0 (the
exact minimizer of its proximal problem); AdamProxL2 takes the norm over the whole parameter group
by default (``prox_norm="group"``, the paper's lambda ||x||), per tensor with ``prox_norm="tensor"``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.optim import Optimizer

from scalefree.optim import _kernels
from scalefree.optim import _torch_compat as tc

Scalar = float | Tensor


@dataclass(frozen=True)
class DecayConvention:
    """How lambda becomes the decay strength s of a step: the one place each convention's formula
    is written. ``strength`` is s; ``per_lr`` is s / lr_t written without dividing by lr_t (which
    may be 0): the weight_decay torch's AdamW kernel multiplies by lr_t. Both take
    (lambda, lr_t, alpha). ``needs_alpha``: s divides by alpha, so a decaying group must be
    built with a positive lr. ``formula`` and ``hint`` word the errors."""

    name: str
    strength: Callable[[float, Scalar, float], Scalar]
    per_lr: Callable[[float, Scalar, float], Scalar]
    needs_alpha: bool
    formula: str
    hint: str


CONVENTIONS: dict[str, DecayConvention] = {
    c.name: c
    for c in (
        DecayConvention(
            "schedule",
            strength=lambda lam, lr, alpha: lam * lr / alpha,
            per_lr=lambda lam, lr, alpha: lam / alpha,
            needs_alpha=True,
            formula="weight_decay * lr / alpha",
            hint="; note 'schedule' is the paper's convention (lambda is the decay per step at the "
            "initial lr), torch's is decay_convention='lr'",
        ),
        DecayConvention(
            "lr",
            strength=lambda lam, lr, alpha: lam * lr,
            per_lr=lambda lam, lr, alpha: lam,
            needs_alpha=False,
            formula="weight_decay * lr",
            hint="; with torch's convention 'lr', weight_decay is per unit of lr",
        ),
        # AdamC (Defazio 2025): the decay falls with lr_t^2, so that at the end of a decaying
        # schedule the steady-state weight norm (and the gradient norm) does not blow up. At
        # lr_t = alpha it equals torch's "lr" convention, so lambda keeps torch's meaning there.
        DecayConvention(
            "corrected",
            strength=lambda lam, lr, alpha: lam * lr * lr / alpha,
            per_lr=lambda lam, lr, alpha: lam * lr / alpha,
            needs_alpha=True,
            formula="weight_decay * lr^2 / alpha",
            hint="; with 'corrected' (AdamC) s = weight_decay * lr_t^2 / alpha, i.e. torch's "
            "weight_decay * lr_t at the initial lr, scaled by lr_t / alpha",
        ),
    )
}
DECAY_CONVENTIONS = tuple(CONVENTIONS)
PROX_NORMS = ("group", "tensor")
CAUTION_FLOOR = _kernels.CAUTION_FLOOR  # C-AdamW: the floor of mean(phi) (Liang et al. 2024)
DEFAULT_CONVENTION = "lr"  # torch.optim.AdamW's; the paper's "schedule" is opt-in
_FUSED_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


def _expected(choices: Iterable[str]) -> str:
    return " or ".join(repr(c) for c in choices)


def decay_per_lr(group: dict[str, Any]) -> Scalar:
    """s / lr_t of this group in its convention (0 without decay, also when alpha = 0)."""
    lam = group["weight_decay"]
    if not lam:
        return 0.0
    return CONVENTIONS[group["decay_convention"]].per_lr(lam, group["lr"], group["alpha"])


def _validate(lr, betas, eps, weight_decay, foreach, fused, capturable) -> tuple:
    """torch.optim.Adam's argument checks and messages (plus: finite values)."""
    if isinstance(lr, Tensor):
        if foreach and not capturable:
            raise ValueError(
                "lr as a Tensor is not supported for capturable=False and foreach=True"
            )
        if lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= lr or not math.isfinite(lr):
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps or not math.isfinite(eps):
        raise ValueError(f"Invalid epsilon value: {eps}")
    if len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, b in enumerate(betas):
        if isinstance(b, Tensor) and b.numel() != 1:
            raise ValueError(f"Tensor betas[{i}] must be 1-element")
        if not 0.0 <= b < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {b}")
    if isinstance(betas[0], Tensor) != isinstance(betas[1], Tensor):
        raise ValueError("betas must be either both floats or both Tensors")
    for i, b in enumerate(betas):
        if isinstance(b, Tensor) and foreach and not capturable:
            raise ValueError(
                f"betas[{i}] as a Tensor is not supported for capturable=False and foreach=True"
            )
    if not 0.0 <= weight_decay or not math.isfinite(weight_decay):
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    return tuple(b.squeeze() if isinstance(b, Tensor) and b.dim() else b for b in betas)


def _check_torch_flags(cls: type, differentiable: Any, decoupled: Any) -> None:
    """torch.optim.Adam/AdamW's ``differentiable`` and ``decoupled_weight_decay``: accepted with
    the values this rule has (False; decoupled = the decay is not in the gradient)."""
    if differentiable:
        raise ValueError(
            f"{cls.__name__} does not support differentiable=True: its steps update the "
            "parameters and states in place (and the one-pass kernel is not autograd-aware), so "
            "no hypergradient flows through them; use torch.optim.Adam/AdamW(differentiable=True)"
        )
    own = not cls.decay_in_gradient
    if decoupled is not None and bool(decoupled) != own:
        raise ValueError(
            f"{cls.__name__} has decoupled_weight_decay={own} by its rule; "
            f"decoupled_weight_decay={decoupled} is a different optimizer "
            f"({'AdamW' if decoupled else 'AdamL2'}); omit the argument"
        )


def _fused_safe(p: Tensor, grad: Tensor, states: list[Tensor]) -> bool:
    """The fused kernel treats each tensor as flat memory: correct only for a dense parameter whose
    gradient and states have its strides. (torch's fused CPU Adam on a strided view such as
    ``b[..., 0]`` writes into ``b[..., 1]``.)"""
    stride = p.stride()
    if any(t.stride() != stride for t in (grad, *states)):
        return False
    if p.is_contiguous():
        return True
    expected = 1  # non-overlapping and dense: strides are a permutation of a contiguous layout
    for st, size in sorted((st, size) for size, st in zip(p.shape, stride) if size != 1):
        if st != expected:
            return False
        expected *= size
    return True


def choose_kernels(group: dict[str, Any], params, grads, states, compiling: bool) -> list[str]:
    """One of "eps0", "fused", "foreach", "single" per parameter.

    eps = 0 takes the per-tensor path that defines 0/0 = 0. ``fused=True`` uses torch's fused kernel
    (an error for a layout it would corrupt); ``foreach=True`` the multi-tensor kernel;
    ``foreach=False`` the single-tensor loop, as in torch. Default: fused for each parameter it is
    correct for (supported device and dtype, dense, matching strides), else torch's default
    (foreach on GPUs, the single-tensor loop on CPU and with a tensor lr without ``capturable``).
    Under torch.compile the default skips fused (torch's fused kernel is opaque to the compiler,
    a graph break), and foreach without ``capturable`` compiles the single-tensor formulation
    (no recompile when a scheduler changes a float lr); the compiler fuses either.
    """
    n = len(params)
    if group["eps"] == 0:
        return ["eps0"] * n
    tensor_hyper = isinstance(group["lr"], Tensor) or isinstance(group["betas"][0], Tensor)
    other = "single" if tensor_hyper and not group["capturable"] else "foreach"
    if group["fused"]:
        for i, (p, g, st) in enumerate(zip(params, grads, states)):
            if not _fused_safe(p, g, st):
                raise RuntimeError(
                    f"`fused=True` cannot update parameter {i} of this group (shape "
                    f"{tuple(p.shape)}, strides {p.stride()}, gradient strides {g.stride()}): the "
                    "fused kernel needs a dense parameter whose gradient and state have the same "
                    "strides. Make the parameter contiguous, or pass fused=False."
                )
        return ["fused"] * n
    if group["foreach"] is False:
        return ["single"] * n
    if group["foreach"]:
        # Compiled, torch's foreach kernel bakes a float lr into the graph (one recompile per lr
        # change, as torch.optim.AdamW(foreach=True) does); the single-tensor formulation keeps
        # it an input, and the compiler fuses the loop anyway.
        return ["single" if compiling and not group["capturable"] else other] * n
    # Not fused: torch's default, foreach on devices with multi-tensor kernels, else single.
    multi = tc.foreach_supported_devices()
    default = [
        "single" if other == "single" or p.device.type not in multi else other for p in params
    ]
    if group["fused"] is False or compiling:
        return default
    fused = tc.fused_supported_devices()
    return [
        "fused"
        if p.device.type in fused and p.dtype in _FUSED_DTYPES and _fused_safe(p, g, st)
        else k
        for p, g, st, k in zip(params, grads, states, default)
    ]


class AdamFamily(Optimizer):
    """Adam with one of the weight-decay rules above; use the named subclasses.

    A subclass is one rule: it overrides two hooks, ``_fold_decay`` (what the decay changes in
    torch's Adam kernel: its lr, its weight_decay and whether that is decoupled) and ``_prox``
    (the operator applied afterwards to y = x - u), and sets the class attributes below.

    Args:
        params: iterable of parameters (or named parameters) or parameter-group dicts.
        lr: the learning rate (float or 1-element tensor; default 1e-3). The lr each group is
            built with is kept as that group's alpha (``group["alpha"]``).
        betas: (beta1, beta2) in [0, 1), both floats or both tensors (default (0.9, 0.999)).
        eps: added to sqrt(v_hat); 0 is allowed and gives exact scale-freeness (default 1e-8).
        weight_decay: lambda >= 0 (default 1e-2 as in torch.optim.AdamW; AdamL2: 0).
        amsgrad: use max(v) over time (Reddi et al. 2018).
        decay_convention: "lr" (s = lambda * lr_t, torch's; default), "schedule"
            (s = lambda * lr_t / alpha, the paper's: lambda is then the decay per step at the
            initial lr, and an lr schedule scales it) or "corrected" (s = lambda * lr_t^2 / alpha,
            AdamC's, Defazio 2025).
        maximize: maximize the objective instead of minimizing it.
        foreach, fused: force torch's multi-tensor or fused Adam kernel (``foreach=False``: the
            single-tensor loop); default: fused where it is correct, else foreach.
        capturable: keep the step counter on the device (CUDA graphs, tensor lr with foreach).
        prox_norm: AdamProxL2 only; "group" (default) or "tensor".
        norm_process_group: AdamProxL2 only; a torch.distributed process group over which the
            squared group norm is summed, for optimizers that see a shard of the parameters
            (ZeroRedundancyOptimizer, FSDP1 flat parameters). Not for DTensors (FSDP2), whose
            norms are global already.
        caution: C-AdamW's update mask (Liang et al. 2024): u <- u * phi / max(mean(phi), 1e-3),
            phi = 1[m * g > 0] per tensor, m after this step's update, g the gradient the moments
            saw (AdamL2: with lambda x); the decay itself is not masked. Every rule takes it.
        cautious_decay: CWD (Chen et al. 2025): the decay or proximal operator only where
            u * x >= 0 (x before the step), x <- x - u elsewhere. Elementwise rules only (AdamW,
            AdamProx, AdamProxL1, AdamProxD); AdamL2 and AdamProxL2 refuse it (ValueError).
            Both are group options (per param group, saved in state_dict). The one-pass CPU
            kernel does them; torch's fused/foreach kernels cannot (they apply u themselves), so
            elsewhere a masked torch path runs, in multi-tensor ops where torch would run
            foreach/fused and per tensor otherwise (``step_paths()`` says which ran).
    """

    # One-pass C++ operator code (``_kernels.W``...) for a step that decays; None: no such kernel.
    kernel_code: ClassVar[int | None] = None
    # lambda x enters the gradient (AdamL2): no decay convention, no alpha needed.
    decay_in_gradient: ClassVar[bool] = False
    # A decay strength s >= this would zero or flip the weights ((1 - s) x): refused. None: any s.
    max_decay_strength: ClassVar[float | None] = None
    # The prox needs a norm over the whole group, so sharded parameters take norm_process_group.
    group_norm: ClassVar[bool] = False
    # The decay/prox acts coordinate by coordinate, so cautious_decay can mask it (CWD).
    elementwise_decay: ClassVar[bool] = False
    # Constructor defaults this class changes (AdamL2: weight_decay=0); its signature shows them.
    option_defaults: ClassVar[Mapping[str, Any]] = {}
    # The options that define a variant ("X with option Y": AdamC's convention, CWD's
    # cautious_decay): defaults too, and the registry entry records them (``with_options``).
    fixed_options: ClassVar[Mapping[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__ and ("option_defaults" in cls.__dict__
                                               or "fixed_options" in cls.__dict__):  # fmt: skip
            cls.__init__ = _init_with_defaults(cls)  # type: ignore[method-assign]

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        decay_convention: str = DEFAULT_CONVENTION,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        capturable: bool = False,
        prox_norm: str = "group",
        norm_process_group: Any = None,
        caution: bool = False,
        cautious_decay: bool = False,
        differentiable: bool = False,
        decoupled_weight_decay: bool | None = None,
    ) -> None:
        if type(self) is AdamFamily:
            raise TypeError("use one of the named optimizers: " + ", ".join(family_names()))
        betas = _validate(lr, betas, eps, weight_decay, foreach, fused, capturable)
        _check_torch_flags(type(self), differentiable, decoupled_weight_decay)
        if decay_convention not in DECAY_CONVENTIONS:
            raise ValueError(
                f"Invalid decay_convention: {decay_convention!r} "
                f"(expected {_expected(DECAY_CONVENTIONS)})"
            )
        if prox_norm not in PROX_NORMS:
            raise ValueError(f"Invalid prox_norm: {prox_norm!r} (expected {_expected(PROX_NORMS)})")
        if norm_process_group is not None and not self.group_norm:
            takers = ", ".join(c.__name__ for c in family_classes() if c.group_norm)
            raise ValueError(
                f"norm_process_group applies to {takers} only, not {type(self).__name__}"
            )
        # Not a group key: a process group cannot be saved in a state_dict.
        self.norm_process_group = norm_process_group
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            decay_convention=decay_convention,
            maximize=maximize,
            foreach=foreach,
            fused=fused,
            capturable=capturable,
            prox_norm=prox_norm,
            caution=bool(caution),
            cautious_decay=bool(cautious_decay),
            differentiable=False,
            decoupled_weight_decay=not self.decay_in_gradient,
        )
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        # alpha: the optimizer's own record of the group's lr at construction (never initial_lr).
        group.setdefault("alpha", float(group["lr"]))
        try:
            self._check_group(group)
        except ValueError:
            self.param_groups.pop()  # a refused group must not stay behind, half added
            raise

    def _check_group(self, group: dict[str, Any]) -> None:
        conv = group["decay_convention"]
        if conv not in DECAY_CONVENTIONS:
            raise ValueError(
                f"Invalid decay_convention: {conv!r} (expected {_expected(DECAY_CONVENTIONS)})"
            )
        if group["prox_norm"] not in PROX_NORMS:
            raise ValueError(
                f"Invalid prox_norm: {group['prox_norm']!r} (expected {_expected(PROX_NORMS)})"
            )
        self._check_masks(group)
        decays = group["weight_decay"] > 0 and not self.decay_in_gradient
        if decays and not group["alpha"] > 0 and CONVENTIONS[conv].needs_alpha:
            formula = CONVENTIONS[conv].formula.replace(" lr ", " lr_t ")
            raise ValueError(
                f"decay_convention={conv!r} needs a positive lr when the group is built "
                f"(s = {formula}, alpha = {group['alpha']}); build it with "
                "the initial lr, or use decay_convention='lr'"
            )

    def _check_masks(self, group: dict[str, Any]) -> None:
        """Refuse the masked rules where they have no meaning for this class (see ``caution`` and
        ``cautious_decay`` in the class docstring): before a step could silently ignore them."""
        name = type(self).__name__
        if group["cautious_decay"] and not self.elementwise_decay:
            takers = ", ".join(
                c.__name__
                for c in family_classes()
                if c.elementwise_decay and AdamFamily in c.__bases__
            )
            why = (
                "its decay is inside the gradient (lambda x), there is no separate decay to mask"
                if self.decay_in_gradient
                else "its operator is not elementwise (a norm over the group), so it cannot be "
                "applied to some coordinates only"
            )
            raise ValueError(
                f"{name} does not take cautious_decay=True: {why}. Cautious weight decay "
                f"(Chen et al. 2025) applies to {takers}"
            )
        if (group["caution"] or group["cautious_decay"]) and not self._has_masked_path():
            raise ValueError(
                f"{name} folds its decay into torch's Adam kernel (_fold_decay) but does not "
                "define _decayed, so caution/cautious_decay cannot be applied to it; override "
                "_decayed(x, u, d, s) or leave these options False"
            )

    @classmethod
    def _has_masked_path(cls) -> bool:
        """The masked path needs the rule as an elementwise ``_decayed`` or entirely in ``_prox``."""
        own = cls._decayed is not AdamFamily._decayed
        return own or cls.decay_in_gradient or cls._fold_decay is AdamFamily._fold_decay

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        if self.norm_process_group is not None:  # copying then fails loudly, never drops it
            state["norm_process_group"] = self.norm_process_group
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("norm_process_group", None)
        # Groups saved by torch.optim.AdamW or an older scalefree lack some keys: torch's defaults.
        for group in self.param_groups:
            for key, value in (
                ("amsgrad", False),
                ("maximize", False),
                ("foreach", None),
                ("fused", None),
                ("capturable", False),
                ("decay_convention", DEFAULT_CONVENTION),
                ("prox_norm", "group"),
                ("caution", False),  # state dicts from before these options: off, as then
                ("cautious_decay", False),
                ("differentiable", False),
                ("decoupled_weight_decay", not self.decay_in_gradient),
            ):
                group.setdefault(key, value)
            self._check_masks(group)
            group.setdefault("alpha", float(group.get("initial_lr", group["lr"])))
            on_device = group["capturable"] or group["fused"]
            for p in group["params"]:
                st = self.state.get(p, {})
                if len(st) and not torch.is_tensor(st.get("step")):
                    st["step"] = torch.tensor(
                        float(st["step"]),
                        dtype=tc.scalar_dtype(bool(on_device)),
                        device=p.device if on_device else "cpu",
                    )

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def decay_strength(group: dict[str, Any]) -> Scalar:
        """s for this step, in the group's convention (see ``CONVENTIONS``)."""
        if group["weight_decay"] == 0:
            return 0.0  # also for alpha = 0 (a group built with lr = 0 and no decay)
        conv = CONVENTIONS[group["decay_convention"]]
        return conv.strength(group["weight_decay"], group["lr"], group["alpha"])

    @torch.compiler.disable
    def _check_decay_strengths(self) -> None:
        """Raise before anything changes when a step would flip or zero the weights (s >= 1)."""
        limit = self.max_decay_strength
        if limit is None:
            # Only (1 - s) x flips or zeroes x at s >= 1. AdamL2 has no multiplicative decay;
            # (x - u) / (1 + s) and D / (D + s) shrink for any s >= 0; for AdamProxL1/L2, s is a
            # threshold in the units of x (or of its norm), where s >= 1 is an ordinary value.
            return
        for i, group in enumerate(self.param_groups):
            if group["weight_decay"] == 0:
                continue
            if isinstance(group["lr"], Tensor) and group["lr"].device.type != "cpu":
                continue  # would sync the device every step (and break CUDA graphs)
            s = float(self.decay_strength(group))
            if s >= limit:
                conv = CONVENTIONS[group["decay_convention"]]
                raise ValueError(
                    f"{type(self).__name__}: decay strength s = {conv.formula} = {s:.6g} >= "
                    f"{limit:g} in param group {i} (weight_decay={group['weight_decay']}, "
                    f"lr={float(group['lr']):.6g}, alpha={group['alpha']:.6g}, "
                    f"decay_convention={conv.name!r}); a step would flip or zero the weights, so "
                    "none was taken. Lower weight_decay or lr" + conv.hint
                )

    def _init_group(self, group, params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps, compiling):
        """Collect the parameters with gradients and their state (created on first use) and pick
        each one's kernel. torch.compile runs this eagerly (torch's ``_init_group`` protocol)."""
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            if torch.is_complex(p):
                raise RuntimeError(f"{type(self).__name__} does not support complex parameters")
            if group["foreach"] and isinstance(group["lr"], Tensor) and not group["capturable"]:
                raise RuntimeError(
                    "lr as a Tensor is not supported for capturable=False and foreach=True"
                )
            state = self.state[p]
            if len(state) == 0:
                if group["fused"]:
                    tc.check_fused_device_dtype(p)
                state["step"] = torch.tensor(0.0, dtype=tc.scalar_dtype())
                for key in ("exp_avg", "exp_avg_sq") + (
                    ("max_exp_avg_sq",) if group["amsgrad"] else ()
                ):
                    state[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
            params.append(p)
            grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            if group["amsgrad"]:
                max_sqs.append(state["max_exp_avg_sq"])
        self._check_params(group, params)
        states = [[self.state[p][k] for k in ("exp_avg", "exp_avg_sq")] for p in params]
        kernels = choose_kernels(group, params, grads, states, compiling)
        if self._masked(group):  # torch's fused kernel never runs: keep the step where foreach does
            kernels = ["foreach" if k == "fused" else k for k in kernels]
        for p, kernel in zip(params, kernels):
            steps.append(self._place_step(group, p, kernel))
        if group["capturable"] and not compiling:  # as torch: CPU parameters cannot capture
            tc.check_capturable_devices(params, steps)
        return tuple(kernels)

    def _place_step(self, group, p: Tensor, kernel: str) -> Tensor:
        """fused / capturable kernels want a float32 step on the parameter's device, the others a
        CPU step (no device sync per bias correction); a loaded state_dict may hold either."""
        state = self.state[p]
        on_device = kernel == "fused" or group["capturable"]
        device = p.device if on_device else torch.device("cpu")
        dtype = torch.float32 if kernel == "fused" else tc.scalar_dtype(group["capturable"])
        if state["step"].device != device or state["step"].dtype != dtype:
            state["step"] = state["step"].to(device, dtype)
        return state["step"]

    def _check_params(self, group: dict[str, Any], params: list[Tensor]) -> None:
        """A group norm must be global: refuse the sharded layouts that would make it local."""
        if not self.group_norm or not any(tc.is_flat_param(p) for p in params):
            return
        name = type(self).__name__
        if group["prox_norm"] == "tensor":
            raise ValueError(
                f"{name} with prox_norm='tensor' cannot run on FSDP flat parameters (FSDP1 "
                "flattens many tensors into one shard, so per-tensor norms do not exist there); "
                "use prox_norm='group' with norm_process_group, FSDP2 (fully_shard), or "
                "FSDP(use_orig_params=True) without sharding"
            )
        if self.norm_process_group is None and tc.distributed_world_size() > 1:
            raise ValueError(
                f"{name} on FSDP flat parameters sees one shard per rank, so its group norm "
                "would be a per-shard norm; pass norm_process_group=<the FSDP process group> "
                "(e.g. torch.distributed.group.WORLD) so the squared norm is summed over ranks"
            )

    # ------------------------------------------------------------------ step
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Perform one optimization step (``closure`` re-evaluates the model, returns the loss)."""
        if not torch.compiler.is_compiling():
            self._check_decay_strengths()
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        prev = torch.is_grad_enabled()
        try:
            # As torch.optim does: graph breaks around the update, so that torch.compile traces
            # _update as one no-grad (inference) graph that updates the parameters in place.
            torch.set_grad_enabled(False)
            tc.graph_break()
            self._update()
        finally:
            tc.graph_break()
            torch.set_grad_enabled(prev)
        return loss

    def _update(self) -> None:
        compiling = torch.compiler.is_compiling()
        paths = [self._step_group(group, compiling) for group in self.param_groups]
        if not compiling:
            self._last_paths = tuple(paths)

    def step_paths(self) -> tuple[str, ...]:
        """The path each param group's last eager step took: "one-pass" (the C++ kernel of
        optim/_kernels.py), "masked:foreach" / "masked:single" (the torch path of caution /
        cautious_decay in multi-tensor or per-tensor ops),
        "torch:<kernels>" (torch's fused/foreach/single-tensor Adam, or "eps0"), or "" for a group
        without gradients; () before the first step. Benchmarks print it."""
        return getattr(self, "_last_paths", ())

    def _step_group(self, group: dict[str, Any], compiling: bool) -> str:
        lr = group["lr"]
        if isinstance(lr, Tensor) and lr.dim():  # torch takes shape [1] and [1, 1]: use it 0-d
            group = {**group, "lr": lr.reshape(())}
        params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps = [], [], [], [], [], []
        kernels = self._init_group(
            group, params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps, compiling
        )
        lists = (params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps)
        s = self.decay_strength(group)
        if params and self._one_pass(group, lists, s, compiling):
            return "one-pass"  # Adam step and decay/prox in one pass (optim/_kernels.py)
        masked = self._masked(group)
        if masked:
            if params:
                masked = self._masked_step(group, kernels, lists, s, compiling)
        elif params:
            self._adam_step(group, kernels, lists, s)
        if group["weight_decay"] != 0 and (params or self._collective()):
            if not masked or not self._decays_elementwise():
                self._prox(group, params, exp_avg_sqs, max_sqs, steps, s)
        if not params:
            return ""
        return f"masked:{masked}" if masked else "torch:" + "+".join(dict.fromkeys(kernels))

    @staticmethod
    def _masked(group: dict[str, Any]) -> bool:
        """The group needs the masked path (torch's kernels cannot apply its masks)."""
        return group["caution"] or (group["cautious_decay"] and group["weight_decay"] != 0)

    def _decays_elementwise(self) -> bool:
        return type(self)._decayed is not AdamFamily._decayed

    def _collective(self) -> bool:
        """The prox sums a norm over ranks: every rank joins, even one without parameters."""
        return self.group_norm and self.norm_process_group is not None

    def _one_pass(self, group, lists, s, compiling: bool) -> bool:
        """The one-pass CPU kernel where it applies (plain CPU tensors, float lr, no explicit
        foreach/fused, not compiling, no cross-rank norm); False: torch's kernels below."""
        if compiling or group["capturable"] or isinstance(group["lr"], Tensor):
            return False
        if self.kernel_code is None or self._collective():
            return False  # a cross-rank norm needs an all-reduce between the two passes
        decays = group["weight_decay"] > 0 if self.decay_in_gradient else s > 0
        code = self.kernel_code if decays else _kernels.PLAIN
        return _kernels.group_step(code, group, lists, s)

    def _masked_step(self, group, kernels, lists, s, compiling: bool) -> str:
        """The Adam step with C-AdamW's update mask (``caution``) and/or CWD's decay mask
        (``cautious_decay``) in torch ops; returns which formulation ran.

        torch's kernels apply u to x themselves, so neither mask can be inserted there: this path
        computes u explicitly. Where torch's multi-tensor kernels would run (foreach or fused
        chosen, float hyperparameters, eager, eps > 0) it uses multi-tensor ops; otherwise one
        tensor at a time (any device, dtype, tensor lr, torch.compile, eps = 0)."""
        multi = {"foreach", "fused"}.issuperset(kernels) and not compiling and group["eps"] > 0
        hyper = (group["lr"], *group["betas"])
        if multi and not group["capturable"] and not any(isinstance(h, Tensor) for h in hyper):
            self._masked_step_foreach(group, lists, s)
            return "foreach"
        self._masked_step_single(group, lists, s)
        return "single"

    def _masked_step_foreach(self, group, lists, s) -> None:
        """``_masked_step_single`` in multi-tensor ops (steps on the CPU, float lr and betas)."""
        params, grads, m, v, max_sqs, steps = lists
        beta1, beta2 = group["betas"]
        lr, lam = group["lr"], group["weight_decay"]
        g = tc.foreach_op("neg")(grads) if group["maximize"] else list(grads)
        if self.decay_in_gradient and lam:
            g = tc.foreach_op("add")(g, params, alpha=lam)
        for t in steps:
            t += 1
        ts = [float(t) for t in steps]
        tc.foreach_op("lerp_")(m, g, 1 - beta1)
        tc.foreach_op("mul_")(v, beta2)
        tc.foreach_op("addcmul_")(v, g, g, value=1 - beta2)
        if group["amsgrad"]:
            tc.foreach_op("maximum_")(max_sqs, v)
        d = tc.foreach_op("sqrt")(max_sqs if group["amsgrad"] else v)
        tc.foreach_op("div_")(d, [(1 - beta2**t) ** 0.5 for t in ts])
        tc.foreach_op("add_")(d, group["eps"])
        u = tc.foreach_op("div")(m, d)
        tc.foreach_op("mul_")(u, [lr / (1 - beta1**t) for t in ts])
        if group["caution"]:
            phi = tc.foreach_op("mul")(m, g)  # 1[m g > 0] = max(sign(m g), 0)
            tc.foreach_op("sign_")(phi)
            tc.foreach_op("clamp_min_")(phi, 0.0)
            kept = [
                (c / max(p.numel(), 1)).clamp_min(CAUTION_FLOOR)
                for c, p in zip(tc.foreach_op("norm")(phi, 1), phi)
            ]
            tc.foreach_op("mul_")(u, phi)
            tc.foreach_op("div_")(u, kept)
        if lam == 0 or not self._decays_elementwise():
            tc.foreach_op("sub_")(params, u)
            return
        if not group["cautious_decay"]:
            for x, ui, di in zip(params, u, d):
                x.copy_(self._decayed(x, ui, di, s))
            return
        agree = [ui * x >= 0 for ui, x in zip(u, params)]
        for x, ui, di, a in zip(params, u, d, agree):
            x.copy_(torch.where(a, self._decayed(x, ui, di, s), x - ui))

    def _masked_step_single(self, group, lists, s) -> None:
        """The masked step tensor by tensor. The decay is ``_decayed(x, u, D, s)`` (x is still
        the parameter before the step), or, for rules without one, y = x - u followed by
        ``_prox`` (in ``_step_group``)."""
        params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps = lists
        beta1, beta2 = group["betas"]
        lr, lam = group["lr"], group["weight_decay"]
        elementwise = lam != 0 and self._decays_elementwise()
        cautious = group["cautious_decay"] and elementwise
        for i, x in enumerate(params):
            g = grads[i].neg() if group["maximize"] else grads[i]
            if self.decay_in_gradient and lam:
                g = g.add(x, alpha=lam)  # AdamL2: the gradient the moments (and caution) see
            steps[i] += 1
            t = _step_value(steps[i], x)
            m = exp_avgs[i].lerp_(g, 1 - beta1)
            v = exp_avg_sqs[i].mul_(beta2).addcmul_(g, g, value=1 - beta2)
            if group["amsgrad"]:
                v = torch.maximum(max_sqs[i], v, out=max_sqs[i])
            d = v.sqrt().div_((1 - beta2**t) ** 0.5).add_(group["eps"])
            u = torch.div(m, d).mul_(lr / (1 - beta1**t))
            if group["eps"] == 0:
                u = torch.where(d > 0, u, torch.zeros_like(u))  # 0/0 := 0
            if group["caution"]:
                phi = m * g > 0
                kept = phi.sum(dtype=u.dtype) / max(phi.numel(), 1)
                u.mul_(phi).div_(kept.clamp_min(CAUTION_FLOOR))
            if not elementwise:
                x.sub_(u)
            elif cautious:  # where u * x < 0 the step is y = x - u, undecayed
                agree = u * x >= 0
                x.copy_(torch.where(agree, self._decayed(x, u, d, s), x - u))
            else:
                x.copy_(self._decayed(x, u, d, s))

    def _adam_step(self, group, kernels, lists, s) -> None:
        lr, wd, decoupled = self._fold_decay(group, s)
        beta1, beta2 = group["betas"]
        common = dict(amsgrad=group["amsgrad"], beta1=beta1, beta2=beta2, lr=lr,
                      weight_decay=wd, maximize=group["maximize"])  # fmt: skip
        for kernel in dict.fromkeys(kernels):
            idx = [i for i, k in enumerate(kernels) if k == kernel]
            sub = [[lst[i] for i in idx] if lst else [] for lst in lists]
            if kernel == "eps0":
                _adam_eps0(*sub, decoupled=decoupled, **common)
                continue
            tc.torch_adam(
                *sub,
                foreach=kernel == "foreach",
                fused=kernel == "fused",
                capturable=group["capturable"],
                decoupled_weight_decay=decoupled,
                eps=group["eps"],
                **common,
            )

    # ------------------------------------------------------------------ the two hooks
    def _fold_decay(self, group: dict[str, Any], s: Scalar) -> tuple[Scalar, Scalar, bool]:
        """Hook 1: the (lr, weight_decay, decoupled) torch's Adam kernel takes for this rule.

        The decays that coincide with torch's own kernels are folded into them; the default is a
        plain Adam step (the rule's operator then runs in ``_prox``). ``decay_per_lr(group)`` is
        s / lr_t without a division by a (maybe zero) lr."""
        return group["lr"], 0.0, False

    def _prox(self, group, params, exp_avg_sqs, max_sqs, steps, s) -> None:
        """Hook 2: the proximal post-step on y = x - u (x holds y when it runs; only called
        with weight_decay != 0). The default does nothing: the kernel step was the whole rule."""

    def _decayed(self, x: Tensor, u: Tensor, d: Tensor, s: Scalar) -> Tensor:
        """Optional hook 3, for the masked rules: the new x of an elementwise rule from x (before
        the step), the (possibly cautioned) Adam step u, D and s, as a new tensor. Rules that
        leave it alone run ``_prox`` on y = x - u instead (AdamL2, AdamProxL2); rules that fold
        their decay into torch's kernel must define it to take caution / cautious_decay."""
        raise NotImplementedError

    @staticmethod
    def _denominators(group, params, exp_avg_sqs, max_sqs, steps) -> list[Tensor]:
        """D = sqrt(v_hat) + eps for each parameter (v_max under AMSGrad)."""
        beta2 = group["betas"][1]
        sq = max_sqs if group["amsgrad"] else exp_avg_sqs
        out = []
        for v, t in zip(sq, steps):
            bc2 = 1.0 - float(beta2) ** float(t)
            out.append((v.sqrt() / math.sqrt(bc2)).add_(group["eps"]))
        return out

    @torch.no_grad()
    def adam_updates(self) -> dict[Tensor, Tensor]:
        """u = lr_t * m_hat / D for every parameter with state, from the current state.

        After a ``step()``, this is the Adam step that was just taken (before the decay or prox),
        i.e. the "update" of the paper's Figure 3 and Appendix C. Under ``caution`` it is the
        cautioned step u * phi / max(mean(phi), 1e-3), phi rebuilt from m and ``p.grad`` (still
        set after the step; without it, the uncautioned u). For AdamL2 the gradient the moments
        saw held lambda * x before the step, which is gone: lambda * x after it is used, an
        O(lambda * u) difference in the mask's borderline coordinates only.
        """
        out: dict[Tensor, Tensor] = {}
        for group in self.param_groups:
            beta1 = float(group["betas"][0])
            live = [p for p in group["params"] if p in self.state and "exp_avg" in self.state[p]]
            if not live:
                continue
            denoms = self._denominators(
                group,
                live,
                [self.state[p]["exp_avg_sq"] for p in live],
                [self.state[p].get("max_exp_avg_sq") for p in live],
                [self.state[p]["step"] for p in live],
            )
            for p, d in zip(live, denoms):
                st = self.state[p]
                bc1 = 1.0 - beta1 ** float(st["step"])
                u = st["exp_avg"] * (float(group["lr"]) / bc1) / d
                u = torch.where(d > 0, u, torch.zeros_like(u))
                out[p] = self._cautioned(group, p, u) if group["caution"] else u
        return out

    def _cautioned(self, group: dict[str, Any], p: Tensor, u: Tensor) -> Tensor:
        """u with caution's mask and rescaling, from the state after the step and ``p.grad``."""
        if p.grad is None:
            return u
        g = -p.grad if group["maximize"] else p.grad
        if self.decay_in_gradient and group["weight_decay"]:
            g = g + group["weight_decay"] * p
        phi = (self.state[p]["exp_avg"] * g > 0).to(u.dtype)
        return u * phi / phi.mean().clamp_min(CAUTION_FLOOR)


def _shrink(norm: Tensor, s: float | Tensor) -> Tensor:
    """max(1 - s / ||y||, 0), with ||y|| = 0 -> 0 (y is 0 then anyway)."""
    return torch.where(norm > 0, (1.0 - s / norm).clamp_min(0.0), torch.zeros_like(norm))


def _prox_l2(group, params: list[Tensor], s, process_group) -> None:
    """Block soft-threshold of y by s: over the whole group (the squared norm summed over
    ``process_group`` when the parameters are shards), or tensor by tensor."""
    norms = tc.foreach_norm(params) if params else []
    if group["prox_norm"] == "tensor":
        if params:
            tc.foreach_mul_(params, list(_shrink(torch.stack(norms), s).unbind()))
        return
    if process_group is None:
        total = torch.linalg.vector_norm(torch.stack(norms))
    else:
        if any(tc.is_dtensor(p) for p in params):
            raise ValueError(
                "AdamProxL2: these parameters are DTensors (FSDP2 / tensor parallel), whose norms "
                "are global already; pass norm_process_group=None"
            )
        if params:
            acc = torch.promote_types(norms[0].dtype, torch.float32)
            sq = torch.stack([n.to(acc) for n in norms]).square().sum()
        else:  # this rank holds no parameter of the group but must join the all-reduce
            sq = torch.zeros((), dtype=torch.float64, device=tc.collective_device(process_group))
        tc.all_reduce_sum_(sq, process_group)
        total = sq.sqrt()
    if params:
        tc.foreach_mul_(params, _shrink(total, s).to(params[0].dtype))


def _step_value(step: Tensor, p: Tensor) -> float | Tensor:
    """t for bias corrections: a Python float in eager mode (as torch does: exact, fast); a 0-d
    tensor of p's precision when compiling or when the step lives on an accelerator (no host sync,
    no graph break)."""
    if step.device.type == "cpu" and not torch.compiler.is_compiling():
        return float(step)
    return step.to(torch.promote_types(p.dtype, torch.float32))


def _adam_eps0(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_sqs,
    steps,
    *,
    amsgrad,
    beta1,
    beta2,
    lr,
    weight_decay,
    decoupled,
    maximize,
) -> None:
    """Per-tensor Adam with eps = 0 and 0/0 := 0 (torch's kernels would produce NaN there).
    Under torch.compile the bias corrections are 0-d tensors (see ``_step_value``)."""
    for i, p in enumerate(params):
        g = -grads[i] if maximize else grads[i]
        if weight_decay and not decoupled:
            g = g.add(p, alpha=weight_decay)
        elif weight_decay:
            p.mul_(1 - lr * weight_decay)
        steps[i] += 1
        t = _step_value(steps[i], p)
        exp_avgs[i].lerp_(g, 1 - beta1)
        exp_avg_sqs[i].mul_(beta2).addcmul_(g, g, value=1 - beta2)
        v = exp_avg_sqs[i]
        if amsgrad:
            torch.maximum(max_sqs[i], v, out=max_sqs[i])
            v = max_sqs[i]
        denom = v.sqrt() / (1 - beta2**t) ** 0.5
        step = exp_avgs[i] * (lr / (1 - beta1**t)) / denom
        p.sub_(torch.where(denom > 0, step, torch.zeros_like(step)))


def _init_with_defaults(cls: type) -> Callable[..., None]:
    """An ``__init__`` for ``cls`` with the family's signature and ``cls``'s own defaults (its
    ``option_defaults`` and ``fixed_options`` and those of its bases), shown by
    ``inspect.signature`` and ``help()``."""
    changed: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        changed.update(klass.__dict__.get("option_defaults", {}))
        changed.update(klass.__dict__.get("fixed_options", {}))
    sig = inspect.signature(AdamFamily.__init__)
    unknown = set(changed) - set(sig.parameters)
    if unknown:
        raise TypeError(f"{cls.__name__}: no such AdamFamily option(s): {sorted(unknown)}")
    sig = sig.replace(
        parameters=[
            p.replace(default=changed[p.name]) if p.name in changed else p
            for p in sig.parameters.values()
        ]
    )

    def __init__(self: AdamFamily, *args: Any, **kwargs: Any) -> None:
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        AdamFamily.__init__(*bound.args, **bound.kwargs)

    __init__.__signature__ = sig  # type: ignore[attr-defined]
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def with_options(base: type[AdamFamily], name: str, doc: str, **fixed: Any) -> type[AdamFamily]:
    """The variant "``base`` with these options": a subclass named ``name`` whose constructor has
    the family's real signature with ``fixed`` as its defaults, recorded as ``fixed_options``
    (the registry entry takes them from there). ``with_options(AdamW, "CWD", doc,
    cautious_decay=True)`` is CWD."""
    return type(
        name,
        (base,),
        {"__doc__": doc, "__module__": __name__, "__qualname__": name, "fixed_options": fixed},
    )


class AdamL2(AdamFamily):
    """Adam on f + (lambda/2)||x||^2: x <- x - u with lambda x inside g (Algorithm 1).

    Defaults are torch.optim.Adam's (weight_decay=0); ``AdamL2(p, lr, weight_decay=wd)`` equals
    ``torch.optim.Adam(p, lr, weight_decay=wd)``. decay_convention does not affect it.
    """

    kernel_code = _kernels.L2
    decay_in_gradient = True
    option_defaults = {"weight_decay": 0.0}  # torch.optim.Adam's

    def _fold_decay(self, group, s):
        return group["lr"], group["weight_decay"], False  # torch Adam's L2 term: g + lambda x


class AdamW(AdamFamily):
    """Decoupled weight decay: x <- (1 - s) x - u (paper eq. (4); Loshchilov & Hutter).

    With the defaults, ``AdamW(p, ...)`` equals ``torch.optim.AdamW(p, ...)`` for the same
    arguments.
    """

    kernel_code = _kernels.W
    max_decay_strength = 1.0
    elementwise_decay = True

    def _fold_decay(self, group, s):
        # torch AdamW: x <- (1 - lr_t wd) x with wd = s / lr_t, i.e. (1 - s) x.
        return group["lr"], decay_per_lr(group), True

    def _decayed(self, x, u, d, s):
        return x * (1 - s) - u


class AdamProx(AdamFamily):
    """Proximal Adam for (lambda/2)||x||^2: x <- (x - u) / (1 + s) (paper eq. (5))."""

    kernel_code = _kernels.PROX
    elementwise_decay = True

    def _fold_decay(self, group, s):
        # (x - u) / (1 + s) = x (1 - lr' wd') - lr' m_hat / D with lr' = lr_t / (1 + s) and
        # wd' = s / lr_t: exactly torch AdamW's update, so no separate prox pass is needed.
        return group["lr"] / (1 + s), decay_per_lr(group), True

    def _decayed(self, x, u, d, s):
        return (x - u) / (1 + s)


class AdamProxL2(AdamFamily):
    """Proximal Adam for lambda ||x|| (group norm): block soft-threshold of y = x - u.

    Sharded parameters: under ZeroRedundancyOptimizer pass norm_process_group (e.g.
    torch.distributed.group.WORLD) so the group norm is global; FSDP2 DTensors need nothing.
    """

    kernel_code = _kernels.PROX_L2
    group_norm = True

    def _prox(self, group, params, exp_avg_sqs, max_sqs, steps, s) -> None:
        _prox_l2(group, params, s, self.norm_process_group)


class AdamProxL1(AdamFamily):
    """Proximal Adam for lambda ||x||_1: soft-threshold of y = x - u by s."""

    kernel_code = _kernels.PROX_L1
    elementwise_decay = True

    def _decayed(self, x, u, d, s):
        y = x - u
        return y.sign() * (y.abs() - s).clamp_min(0.0)

    def _prox(self, group, params, exp_avg_sqs, max_sqs, steps, s) -> None:
        if not isinstance(s, Tensor) and not torch.compiler.is_compiling():
            for p in params:
                tc.softshrink_(p, s)  # one in-place pass per tensor, no temporaries
        else:  # tensor lr, or symbolic s under torch.compile (clamp(y, -s, s) would
            for p in params:  # specialize on s and recompile whenever the lr changes)
                magnitude = (p.abs() - s).clamp_min_(0.0)
                p.sign_().mul_(magnitude)


class AdamProxD(AdamFamily):
    """Prox of (lambda/2)||x||^2 in the adaptive metric D: x <- (D x - lr m_hat) / (D + s)
    ("Decay No More")."""

    kernel_code = _kernels.PROX_D
    elementwise_decay = True

    def _decayed(self, x, u, d, s):
        # D y / (D + s): the prox in the metric D of y = x - u (u possibly cautioned); y where
        # D + s = 0 (no decay this step and a zero denominator).
        y = x - u
        ds = d + s
        return torch.where(ds > 0, y * d / ds, y)

    def _prox(self, group, params, exp_avg_sqs, max_sqs, steps, s) -> None:
        # x <- (D x - lr m_hat) / (D + s) = y * D / (D + s), with D from the state after this
        # step. With c = sqrt(1 - beta2^t): D c = sqrt(v) + c eps, so D / (D + s) =
        # (sqrt(v) + c eps) / (sqrt(v) + c (eps + s)). Tensor by tensor, so the one
        # temporary stays in cache; D = 0 and s > 0 give 0, the prox problem's minimizer.
        beta2, eps = group["betas"][1], group["eps"]
        sq = max_sqs if group["amsgrad"] else exp_avg_sqs
        for x, v2, t in zip(params, sq, steps):
            c = (1 - beta2 ** _step_value(t, x)) ** 0.5
            d = v2.sqrt().add_(c * eps)
            x.mul_(d)
            x.div_(d.add_(c * s))


_ADAMC_DOC = """AdamW with corrected decay (Defazio 2025, "Why Gradients Rapidly Increase Near the End of
    Training"): x <- (1 - s) x - u with s = lambda * lr_t^2 / alpha (decay_convention="corrected").

    Where the meaning of weight_decay differs: at lr_t = alpha, s = lambda * lr_t exactly as in
    torch.optim.AdamW, so ``AdamC(params, lr, weight_decay=wd)`` starts as ``AdamW`` with the same
    arguments; as an LR scheduler lowers lr_t, the decay falls with lr_t^2 (AdamW: lr_t), so the
    equilibrium weight norm of a normalized layer (||x||^2 ~ lr_t^2 / s) no longer shrinks with
    lr_t, and its gradient norm (~ 1 / ||x||) no longer grows at the end of training. alpha is the lr the group
    was built with (``group["alpha"]``), so build it with the peak lr, as for any scheduler.

    The paper applies the correction to layers followed by normalization (their weights'
    scale does not matter, only the effective step); give the other parameters their own group:
    ``param_groups(model, wd, corrected_for="normalized")`` returns such groups (the others with
    ``decay_convention="lr"``, i.e. plain AdamW there).
    """
AdamC = with_options(AdamW, "AdamC", _ADAMC_DOC, decay_convention="corrected")
CWD = with_options(
    AdamW,
    "CWD",
    """AdamW with cautious weight decay (Chen et al. 2025, "Cautious Weight Decay"): the decay
    only where the update and the weight agree in sign, x <- x - u - s * 1[u * x >= 0] * x
    (x before the step). = ``AdamW(..., cautious_decay=True)``.""",
    cautious_decay=True,
)
CAdamW = with_options(
    AdamW,
    "CAdamW",
    """Cautious AdamW, C-AdamW (Liang et al. 2024, "Cautious Optimizers"): the Adam step masked
    where it disagrees with the gradient, u <- u * phi / max(mean(phi), 1e-3) with
    phi = 1[m * g > 0] per tensor (m after this step's update), then x <- (1 - s) x - u; the decay
    itself is not masked. = ``AdamW(..., caution=True)``. The mask is the paper's m * g.""",
    caution=True,
)


def family_classes() -> tuple[type[AdamFamily], ...]:
    """Every subclass of AdamFamily defined so far (the named rules first, then any added)."""
    out: list[type[AdamFamily]] = []
    todo = list(AdamFamily.__subclasses__())
    while todo:
        cls = todo.pop(0)
        if cls not in out:
            out.append(cls)
            todo.extend(cls.__subclasses__())
    return tuple(out)


def family_names() -> tuple[str, ...]:
    return tuple(c.__name__ for c in family_classes())


_DEFAULTS_NOTE = (
    "Defaults are torch's (decay_convention='lr', weight_decay={wd}); the paper and "
    "``scalefree train`` use decay_convention='schedule' (s = weight_decay * lr_t / alpha)."
)
for _cls in (AdamW, AdamProx, AdamProxL2, AdamProxL1, AdamProxD, CWD, CAdamW):
    _cls.__doc__ = f"{_cls.__doc__}\n\n{_DEFAULTS_NOTE.format(wd=1e-2)}\n\n{AdamFamily.__doc__}"
for _cls in (AdamL2, AdamC):
    _cls.__doc__ = f"{_cls.__doc__}\n{AdamFamily.__doc__}"
del _cls
