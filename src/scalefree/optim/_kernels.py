"""One-pass CPU kernels for the Adam family, with the pure-torch path as the automatic fallback.

``prox_step`` takes the Adam step and the rule's decay or proximal operator (the table in
``scalefree.optim.adam_family``'s docstring) in one pass over (x, g, m, v): 28 bytes per float32
parameter, the bandwidth floor of any Adam. All tensors of a group go to one C++ call that splits
their elements between torch's threads, so a thousand small tensors cost one parallel region.
AdamProxL2 needs the norm of y = x - u first: the pass writes y and sums y^2 per tensor, a second
pass scales (36 bytes per parameter in all). The masks are flags of the same kernel:
``cautious_decay`` (CWD) costs nothing extra; ``caution`` (C-AdamW) needs mean(phi) per tensor
before any x changes, so g and m (and x for AdamL2) are read once more to count phi: for a tensor
of up to 65,536 elements by the thread that then steps it, while they are in its cache (28 bytes
per parameter from memory), for a larger one in a pass of its own (36 bytes). AdamC is the W
kernel with another s.

The kernel is ``_adam_kernels.cpp``, built on first use with torch.utils.cpp_extension (a C++
compiler and ninja are needed; about 40 s on 2 cores) and cached by torch under
``TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``): later processes load it in well
under a second. The name of the build holds a hash of the source and flags, so an edited kernel
is rebuilt, never mixed up with an old one.

When it is used (``prox_step`` returns True): CPU, float32 or float64, every tensor contiguous and
dense, a plain float lr, not inside torch.compile, and ``SCALEFREE_KERNELS`` not set to ``0``/
``off``. Otherwise, or when the build fails (no compiler), it returns False and the caller runs
the pure-torch path; ``kernel_path()`` says which path runs and why.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from scalefree.optim._kernel_cache import KernelUnavailable, build_dirs, check_cache, record_build

SOURCE = Path(__file__).with_name("_adam_kernels.cpp")
# -fopenmp: at::parallel_for is inline OpenMP code (torch's CPU build uses OpenMP); at run time it
# binds to the libgomp.so.1 torch has already loaded. -fno-trapping-math lets the 0/0 := 0 select
# vectorize (without it GCC guards the division and the loop runs ~4x slower); neither flag changes
# a computed value.
CFLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"]
LDFLAGS = ["-fopenmp"]
# Operator codes of _adam_kernels.cpp (its enum Variant): what follows the Adam step. Each
# optimizer class names its own code (``AdamFamily.kernel_code``); PLAIN is a step without decay.
PLAIN, L2, W, PROX, PROX_L2, PROX_L1, PROX_D = range(7)
CAUTION_FLOOR = 1e-3  # C-AdamW's floor of mean(phi) (adam_family.CAUTION_FLOOR)

_lock = threading.Lock()
_state: dict[str, object] = {"module": None, "path": None}


def enabled_by_env() -> bool:
    """``SCALEFREE_KERNELS=0`` (or off/false/no) turns the compiled path off."""
    return os.environ.get("SCALEFREE_KERNELS", "auto").strip().lower() not in (
        "0",
        "off",
        "false",
        "no",
    )


def _cpu_identity() -> str:
    """-march=native builds for this CPU: a cache shared between machines (a cluster's home
    directory) must not hand one CPU's build to another, so the CPU is part of the build's name."""
    ident = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "flags", "Features")):
                    ident += line
                if line.strip() == "":
                    break  # the first processor is enough
    except OSError:
        ident += platform.processor()
    return ident


# The source path is part of the name too: torch's build files record it, so two checkouts sharing
# one name would rebuild each other's build (about 30 s) every time they alternate.


def _name() -> str:
    src = SOURCE.read_text()
    digest = hashlib.sha1(
        (
            src + " ".join(CFLAGS + LDFLAGS) + torch.__version__ + _cpu_identity() + str(SOURCE)
        ).encode()
    ).hexdigest()[:12]
    return f"scalefree_adam_kernels_{digest}"


def _build() -> ModuleType:
    from torch.utils.cpp_extension import get_default_build_root, load

    name = _name()
    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root())
    check_cache(root, name)  # a cache that would fail, hang or crash the load: KernelUnavailable
    if not any(root.glob(f"*/{name}/{name}*.so")) and not (root / name).is_dir():
        print(
            "scalefree: building the one-pass CPU Adam kernel (once per machine, about a minute; "
            "SCALEFREE_KERNELS=0 skips it and uses torch's kernels)",
            file=sys.stderr,
            flush=True,
        )
    try:
        module = load(
            name=name,
            sources=[str(SOURCE)],
            extra_cflags=CFLAGS,
            extra_ldflags=LDFLAGS,
            verbose=False,
        )
    except (ImportError, OSError) as exc:  # a damaged build in the cache
        where = " or ".join(str(d) for d in build_dirs(root, name)) or str(root)
        raise KernelUnavailable(
            f"the cached build cannot be loaded ({type(exc).__name__}: {exc}); delete {where} to "
            "rebuild it"
        ) from None
    record_build(root, name)
    return module


def load_module() -> ModuleType | None:
    """The compiled kernel module, built or loaded once per process; None if it cannot be (then
    one warning on stderr names the cause, and every step takes the pure-torch path)."""
    if _state["path"] is not None:  # every optimizer step asks: no lock once decided
        return _state["module"]  # type: ignore[return-value]
    with _lock:
        if _state["path"] is None:
            t0 = time.perf_counter()
            try:
                _state["module"] = _build()
                _state["path"] = (
                    f"cpp (one-pass C++ kernel, ready in {time.perf_counter() - t0:.1f} s)"
                )
            except Exception as exc:  # no compiler, no ninja, no Python headers: fall back
                why = (
                    str(exc)
                    if isinstance(exc, KernelUnavailable)
                    else f"{type(exc).__name__}: {exc}"
                )
                why = " ".join(why.split())[:400]  # one line (compiler output is long)
                _state["path"] = f"torch (kernel build failed: {why})"
                print(
                    f"scalefree: warning: the one-pass CPU Adam kernel is not used: {why}. "
                    "Training goes on with the pure-torch path (SCALEFREE_KERNELS=0 chooses it "
                    "without this warning)",
                    file=sys.stderr,
                    flush=True,
                )
        return _state["module"]  # type: ignore[return-value]


def kernel_path() -> str:
    """Which path ``prox_step`` takes on CPU: 'cpp (...)' or 'torch (... why ...)'. Which path a
    given optimizer's groups actually took (one-pass, torch's kernels, or the masked torch path
    of caution / cautious_decay) is ``AdamFamily.step_paths()``."""
    if not enabled_by_env():
        return "torch (SCALEFREE_KERNELS turns the compiled kernel off)"
    load_module()
    return str(_state["path"])


def prox_step(
    code: int,
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor],
    steps: list[Tensor],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    s: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool,
    prox_norm: str = "group",
    caution: bool = False,
    cautious_decay: bool = False,
) -> bool:
    """The whole step of operator ``code`` (Adam step and decay/prox) in one pass; False: not taken.

    ``s`` is the decay strength (``AdamFamily.decay_strength``, already in its convention); ``weight_decay``
    is lambda, used by the L2 code only. ``caution`` / ``cautious_decay``: C-AdamW's update mask
    and CWD's decay mask (elementwise codes only; declined otherwise). Steps are incremented here. Returns False without touching
    anything when the compiled kernel is off, unavailable, or not for these tensors.
    """
    if not params or isinstance(lr, Tensor) or not enabled_by_env():
        return False
    if torch.compiler.is_compiling() or params[0].device.type != "cpu":
        return False
    if not all(_plain(t) for t in params) or not all(_plain(g) for g in grads):
        return False  # DTensor / other subclasses: their data lives elsewhere
    mod = load_module()
    if mod is None:
        return False
    sums = mod.step(
        code,
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        max_exp_avg_sqs if amsgrad else [],
        steps,
        float(lr),
        beta1,
        beta2,
        eps,
        s,
        weight_decay,
        amsgrad,
        maximize,
        caution,
        cautious_decay,
        CAUTION_FLOOR,
    )
    if sums is None:
        return False
    if code == PROX_L2:
        mod.scale_(params, shrink_factors(sums, s, prox_norm))
    return True


def _plain(t: Tensor) -> bool:
    return type(t) in (Tensor, torch.nn.Parameter) and t.layout == torch.strided


def shrink_factors(sums: Tensor, s: float, prox_norm: str) -> Tensor:
    """max(1 - s / ||y||, 0) per tensor (``prox_norm="tensor"``) or for the whole group; 0 if y = 0.

    ``sums`` holds sum(y^2) per tensor (float64).
    """
    if prox_norm == "group":
        norm = math.sqrt(float(sums.sum()))
        f = max(1.0 - s / norm, 0.0) if norm > 0 else 0.0
        return torch.full_like(sums, f)
    norms = sums.sqrt()
    return torch.where(norms > 0, (1.0 - s / norms).clamp_min(0.0), torch.zeros_like(norms))


def group_step(code: int, group: dict, tensors: tuple[list[Tensor], ...], s: float) -> bool:
    """``prox_step`` with the options of an optimizer's param group; the caller's one-line hook.

    ``tensors`` = (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps). Groups that ask
    for torch's kernels explicitly (``foreach`` or ``fused`` set) keep them.
    """
    if group.get("foreach") is not None or group.get("fused") is not None:
        return False
    beta1, beta2 = group["betas"]
    return prox_step(
        code,
        *tensors,
        lr=group["lr"],
        beta1=float(beta1),
        beta2=float(beta2),
        eps=group["eps"],
        s=s,
        weight_decay=group["weight_decay"],
        amsgrad=group["amsgrad"],
        maximize=group["maximize"],
        prox_norm=group.get("prox_norm", "group"),
        caution=bool(group.get("caution", False)),
        # A step without decay (code PLAIN) has nothing to mask.
        cautious_decay=bool(group.get("cautious_decay", False)) and code not in (PLAIN, L2),
    )
