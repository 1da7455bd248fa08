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

A decay strength s >= 1 would zero or flip the weights under AdamW's (1 - s) x (and so under
AdamC, CWD and CAdamW), so their step raises a ValueError instead, before anything changes (a
step compiled with torch.compile checks too; a tensor lr on an accelerator is not read, to avoid
a device sync). The other rules shrink x for every s >= 0 (for AdamProxL1/L2, s is a threshold
in the units of x), so they step for any s.

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

Where the code is: this module re-exports the family. ``decay`` holds the conventions and s;
``kernel_choice`` picks each parameter's kernel; ``functional`` has the step paths as functions
of plain tensors (single-tensor, multi-tensor, torch's kernels, the one-pass C++ kernel);
``family`` the thin optimizer class ``AdamFamily``; ``rules`` the rules above, each a subclass
that says what it is with class attributes; ``variants`` makes "rule with fixed options".

Deviations from the paper, stated: AdamProxD with D = 0 and s > 0 maps the coordinate to 0 (the
exact minimizer of its proximal problem); AdamProxL2 takes the norm over the whole parameter group
by default (``prox_norm="group"``, the paper's lambda ||x||), per tensor with ``prox_norm="tensor"``.
"""

from __future__ import annotations

from scalefree.optim import rules
from scalefree.optim.decay import (
    CAUTION_FLOOR,
    CONVENTIONS,
    DECAY_CONVENTIONS,
    DEFAULT_CONVENTION,
    PROX_NORMS,
    DecayConvention,
    Scalar,
    decay_per_lr,
    decay_strength,
)
from scalefree.optim.family import AdamFamily, family_classes, family_names
from scalefree.optim.functional import adam_update, step_value
from scalefree.optim.kernel_choice import choose_kernels
from scalefree.optim.rules import *  # noqa: F403  (the nine rules, rules.__all__)
from scalefree.optim.variants import with_options

__all__ = [
    "AdamFamily", *rules.__all__, "CAUTION_FLOOR", "CONVENTIONS", "DECAY_CONVENTIONS",
    "DEFAULT_CONVENTION", "PROX_NORMS", "DecayConvention", "Scalar", "adam_update",
    "choose_kernels", "decay_per_lr", "decay_strength", "family_classes", "family_names",
    "step_value", "with_options",
]  # fmt: skip
