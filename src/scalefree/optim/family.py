"""``AdamFamily``: the optimizer class every rule of ``scalefree.optim.rules`` subclasses.

A thin ``torch.optim.Optimizer`` (argument checks, param groups, state, ``step()`` choosing a
path) over the functional paths of ``scalefree.optim.functional``. The math is in
``scalefree.optim.adam_family``'s docstring.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.optim import Optimizer

from scalefree.optim import _kernels
from scalefree.optim import _torch_compat as tc
from scalefree.optim import functional as F
from scalefree.optim.arguments import check_hyper, check_masks, check_sharded, check_torch_flags
from scalefree.optim.decay import (
    DEFAULT_CONVENTION,
    Scalar,
    check_alpha,
    check_choices,
    check_strengths,
    decay_strength,
)
from scalefree.optim.kernel_choice import choose_kernels
from scalefree.optim.variants import init_with_defaults, subclasses


class AdamFamily(Optimizer):
    """Adam with one of the weight-decay rules above; use the named subclasses.

    A subclass is one rule. It says what it is with the class attributes below and implements
    the hooks they name: ``_fold_decay`` (``folds_decay``: what the decay changes in torch's Adam
    kernel: its lr, its weight_decay and whether that is decoupled), ``_decayed``
    (``elementwise_decay``: the new x of an elementwise rule, used where u is explicit) and
    ``_prox`` (otherwise: the operator applied afterwards to y = x - u).

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
    # torch's Adam kernel takes the whole rule through ``_fold_decay`` (AdamL2, AdamW, AdamProx).
    # False: the kernel takes a plain Adam step and ``_prox`` runs on y = x - u afterwards.
    folds_decay: ClassVar[bool] = False
    # The rule is elementwise, written as ``_decayed(x, u, D, s)``: the masked paths apply it
    # (cautious_decay can mask it, CWD) instead of ``_prox``.
    elementwise_decay: ClassVar[bool] = False
    # A decay strength s >= this would zero or flip the weights ((1 - s) x): refused. None: any s.
    max_decay_strength: ClassVar[float | None] = None
    # The prox needs a norm over the whole group, so sharded parameters take norm_process_group.
    group_norm: ClassVar[bool] = False
    # Constructor defaults this class changes (AdamL2: weight_decay=0); its signature shows them.
    option_defaults: ClassVar[Mapping[str, Any]] = {}
    # The options that define a variant ("X with option Y": AdamC's convention, CWD's
    # cautious_decay): defaults too, and the registry entry records them (``with_options``).
    fixed_options: ClassVar[Mapping[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__ and ("option_defaults" in cls.__dict__
                                               or "fixed_options" in cls.__dict__):  # fmt: skip
            cls.__init__ = init_with_defaults(cls, AdamFamily.__init__)  # type: ignore[method-assign]

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
        betas = check_hyper(lr, betas, eps, weight_decay, foreach, fused, capturable)
        check_torch_flags(type(self), differentiable, decoupled_weight_decay)
        check_choices(decay_convention, prox_norm)
        if norm_process_group is not None and not self.group_norm:
            takers = ", ".join(c.__name__ for c in family_classes() if c.group_norm)
            raise ValueError(
                f"norm_process_group applies to {takers} only, not {type(self).__name__}"
            )
        # Not a group key: a process group cannot be saved in a state_dict.
        self.norm_process_group = norm_process_group
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            decay_convention=decay_convention, maximize=maximize, foreach=foreach, fused=fused,
            capturable=capturable, prox_norm=prox_norm, caution=bool(caution),
            cautious_decay=bool(cautious_decay), **self._group_defaults(),
        )  # fmt: skip
        super().__init__(params, defaults)

    def _group_defaults(self) -> dict[str, Any]:
        """torch's flags a group records with the only values this family has."""
        return {"differentiable": False, "decoupled_weight_decay": not self.decay_in_gradient}

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
        check_choices(group["decay_convention"], group["prox_norm"])
        self._check_masks(group)
        if group["weight_decay"] > 0 and not self.decay_in_gradient:
            check_alpha(group)

    def _check_masks(self, group: dict[str, Any]) -> None:
        """Refuse caution / cautious_decay where they have no meaning for this class."""

        def elementwise_rules() -> str:
            named = (c for c in family_classes() if AdamFamily in c.__bases__)
            return ", ".join(c.__name__ for c in named if c.elementwise_decay)

        check_masks(type(self), group, elementwise_rules)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        if self.norm_process_group is not None:  # copying then fails loudly, never drops it
            state["norm_process_group"] = self.norm_process_group
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("norm_process_group", None)
        # Groups saved by torch.optim.AdamW or an older scalefree lack some keys: torch's defaults
        # (caution and cautious_decay: off, as before these options).
        missing = dict(amsgrad=False, maximize=False, foreach=None, fused=None, capturable=False,
                       decay_convention=DEFAULT_CONVENTION, prox_norm="group", caution=False,
                       cautious_decay=False, **self._group_defaults())  # fmt: skip
        for group in self.param_groups:
            for key, value in missing.items():
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

    decay_strength = staticmethod(decay_strength)

    @torch.compiler.disable
    def _check_decay_strengths(self) -> None:
        """Raise before anything changes when a step would flip or zero the weights (s >= 1)."""
        # Only (1 - s) x flips or zeroes x at s >= 1. AdamL2 has no multiplicative decay;
        # (x - u) / (1 + s) and D / (D + s) shrink for any s >= 0; for AdamProxL1/L2, s is a
        # threshold in the units of x (or of its norm), where s >= 1 is an ordinary value.
        if self.max_decay_strength is not None:
            check_strengths(type(self).__name__, self.param_groups, self.max_decay_strength)

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
        check_sharded(type(self).__name__, group, params, self.group_norm,
                      self.norm_process_group)  # fmt: skip
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
            lr, wd, decoupled = self._fold_decay(group, s)
            beta1, beta2 = group["betas"]
            F.torch_step(kernels, lists, lr=lr, weight_decay=wd, decoupled=decoupled,
                         beta1=beta1, beta2=beta2, eps=group["eps"], amsgrad=group["amsgrad"],
                         maximize=group["maximize"], capturable=group["capturable"])  # fmt: skip
        if group["weight_decay"] != 0 and (params or self._collective()):
            if not masked or not self.elementwise_decay:
                self._prox(group, params, exp_avg_sqs, max_sqs, steps, s)
        if not params:
            return ""
        return f"masked:{masked}" if masked else "torch:" + "+".join(dict.fromkeys(kernels))

    @staticmethod
    def _masked(group: dict[str, Any]) -> bool:
        """The group needs the masked path (torch's kernels cannot apply its masks)."""
        return group["caution"] or (group["cautious_decay"] and group["weight_decay"] != 0)

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
        return F.one_pass_step(self.kernel_code if decays else _kernels.PLAIN, group, lists, s)

    def _masked_step(self, group, kernels, lists, s, compiling: bool) -> str:
        """The Adam step with C-AdamW's update mask (``caution``) and/or CWD's decay mask
        (``cautious_decay``) with u explicit; returns which formulation ran.

        torch's kernels apply u to x themselves, so neither mask can be inserted there. Where
        torch's multi-tensor kernels would run (foreach or fused chosen, float hyperparameters,
        eager, eps > 0) this uses multi-tensor ops; otherwise one tensor at a time (any device,
        dtype, tensor lr, torch.compile, eps = 0). Without an elementwise ``_decayed`` the step is
        y = x - u, and ``_prox`` follows (in ``_step_group``)."""
        multi = {"foreach", "fused"}.issuperset(kernels) and not compiling and group["eps"] > 0
        hyper = (group["lr"], *group["betas"])
        lam = group["weight_decay"]
        beta1, beta2 = group["betas"]
        rule = dict(
            beta1=beta1, beta2=beta2, lr=group["lr"], eps=group["eps"], amsgrad=group["amsgrad"],
            maximize=group["maximize"], l2=lam if self.decay_in_gradient else 0.0,
            caution=group["caution"], s=s, cautious=group["cautious_decay"],
            decayed=self._decayed if lam != 0 and self.elementwise_decay else None,
        )  # fmt: skip
        if multi and not group["capturable"] and not any(isinstance(h, Tensor) for h in hyper):
            F.multi_tensor_step(*lists, **rule)
            return "foreach"
        F.single_tensor_step(*lists, **rule)
        return "single"

    # ------------------------------------------------------------------ the rule's hooks
    def _fold_decay(self, group: dict[str, Any], s: Scalar) -> tuple[Scalar, Scalar, bool]:
        """``folds_decay`` rules: the (lr, weight_decay, decoupled) torch's Adam kernel takes
        (``decay_per_lr(group)`` is s / lr_t without dividing by lr_t). Default: plain Adam."""
        return group["lr"], 0.0, False

    def _prox(self, group, params, exp_avg_sqs, max_sqs, steps, s) -> None:
        """The proximal post-step on y = x - u (x holds y when it runs; only called with
        weight_decay != 0). The default does nothing: the kernel step was the whole rule."""

    def _decayed(self, x: Tensor, u: Tensor, d: Tensor, s: Scalar) -> Tensor:
        """For ``elementwise_decay`` rules: the new x from x (before the step), the (possibly
        cautioned) Adam step u, D and s, as a new tensor; the masked paths use it instead of
        ``_prox``. Rules without it run ``_prox`` on y = x - u instead (AdamL2, AdamProxL2)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ statistics
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
        return F.adam_updates(self.param_groups, self.state, self.decay_in_gradient)


def family_classes() -> tuple[type[AdamFamily], ...]:
    """Every subclass of AdamFamily defined so far (the named rules first, then any added)."""
    return subclasses(AdamFamily)


def family_names() -> tuple[str, ...]:
    return tuple(c.__name__ for c in family_classes())
