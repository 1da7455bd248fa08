"""Every private torch API scalefree uses, in one place, each behind a feature check.

torch does not promise these names across releases; if one moves, the error below names it, the
installed torch and the versions that have it, instead of an AttributeError deep inside a training
step. Nothing else in ``src/`` imports a private torch name (tests/optim checks that).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

# The oldest torch CI installs and tests (pyproject's floor, pinned by tests/test_packaging.py).
TORCH_FLOOR = "2.13"


def _missing(name: str, since: str = TORCH_FLOOR) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(missing_message(name, since))

    return fail


def missing_message(name: str, since: str = TORCH_FLOOR) -> str:
    return (
        f"scalefree.optim needs {name}, which torch {torch.__version__} does not provide "
        f"(torch {since} and later have it); install torch>={since} (see README, Setup)"
    )


try:  # the functional Adam (fused, foreach and single-tensor kernels) behind torch.optim.Adam
    from torch.optim.adam import adam as _torch_adam
except ImportError:  # pragma: no cover - depends on the installed torch
    _torch_adam = _missing("torch.optim.adam.adam")
try:  # older torch keeps the decoupled (AdamW) form in its own function
    from torch.optim.adamw import adamw as _torch_adamw
except ImportError:  # pragma: no cover
    _torch_adamw = None


def _takes(fn: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return False


_ADAM_DECOUPLES = _takes(_torch_adam, "decoupled_weight_decay")


def torch_adam(*tensor_lists: list[Tensor], decoupled_weight_decay: bool, **kw: Any) -> None:
    """torch's functional Adam step (``torch.optim.adam.adam``), decoupled = AdamW's decay.

    Newer torch takes ``decoupled_weight_decay=``; older torch has the decoupled form as
    ``torch.optim.adamw.adamw`` with the same arguments, used then."""
    if _ADAM_DECOUPLES:
        _torch_adam(*tensor_lists, decoupled_weight_decay=decoupled_weight_decay, **kw)
    elif not decoupled_weight_decay:
        _torch_adam(*tensor_lists, **kw)
    elif _torch_adamw is not None:
        _torch_adamw(*tensor_lists, **kw)
    else:  # pragma: no cover
        raise RuntimeError(missing_message("torch.optim.adamw.adamw or decoupled_weight_decay"))


try:
    from torch.optim.optimizer import _get_fused_kernels_supported_devices as _fused_devices
except ImportError:  # pragma: no cover

    def _fused_devices() -> list[str]:
        return ["cuda", "cpu"]


def fused_supported_devices() -> list[str]:
    """Device types torch's fused Adam kernel runs on."""
    return list(_fused_devices())


def scalar_dtype(fused_or_capturable: bool = False) -> torch.dtype:
    """dtype of the ``step`` counter, as torch.optim.Adam keeps it."""
    if fused_or_capturable:
        return torch.float32
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def check_fused_device_dtype(p: Tensor) -> None:
    """torch's own check (and message) for ``fused=True``."""
    devices = fused_supported_devices()
    if not (p.device.type in devices and torch.is_floating_point(p)):
        raise RuntimeError(
            "`fused=True` requires all the params to be floating point Tensors of "
            f"supported devices: {devices} but {p.dtype} and {p.device.type}"
        )


def foreach_mul_(tensors: list[Tensor], factors: Tensor | list[Tensor]) -> None:
    """tensors[i] *= factors (one 0-d tensor) or factors[i], in one multi-tensor call where
    torch has ``torch._foreach_mul_``."""
    fn = getattr(torch, "_foreach_mul_", None)
    if fn is not None:
        fn(tensors, factors)
        return
    for i, t in enumerate(tensors):  # pragma: no cover - torch without foreach ops
        t.mul_(factors if isinstance(factors, Tensor) else factors[i])


def foreach_op(op: str) -> Callable[..., Any]:
    """``torch._foreach_<op>`` (e.g. "lerp_", "sqrt", "addcmul_"): one multi-tensor call per list
    where torch has it, else a per-tensor loop of ``Tensor.<op>`` with the same meaning (list
    arguments are taken element by element, scalars and single tensors as they are)."""
    fn = getattr(torch, f"_foreach_{op}", None)
    if fn is not None:
        return fn

    def loop(tensors, *args, **kwargs):  # pragma: no cover - torch without foreach ops
        out = []
        for i, t in enumerate(tensors):
            a = [x[i] if isinstance(x, (list, tuple)) else x for x in args]
            out.append(getattr(t, op)(*a, **kwargs))
        return None if op.endswith("_") else out

    return loop


def norm_layer_base() -> tuple[type[nn.Module], ...]:
    """The common base of BatchNorm*/InstanceNorm*/SyncBatchNorm (torch's private ``_NormBase``),
    or those classes themselves where torch no longer has it."""
    base = getattr(nn.modules.batchnorm, "_NormBase", None)
    if isinstance(base, type) and issubclass(base, nn.Module):
        return (base,)
    return (  # pragma: no cover - depends on the installed torch
        nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
        nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
    )  # fmt: skip


def foreach_norm(tensors: list[Tensor]) -> list[Tensor]:
    """The 2-norm of each tensor (DTensors give global norms)."""
    if hasattr(torch, "_foreach_norm"):
        return list(torch._foreach_norm(tensors))
    return [torch.linalg.vector_norm(t) for t in tensors]  # pragma: no cover


def softshrink_(p: Tensor, s: float) -> None:
    """p <- sign(p) max(|p| - s, 0) in place, one pass, no temporary (s a Python float)."""
    fn = getattr(getattr(torch._C, "_nn", None), "softshrink", None)
    if fn is None:  # pragma: no cover
        p.sub_(p.clamp(-s, s))
    else:
        fn(p, s, out=p)


try:
    from torch.distributed.fsdp._flat_param import FlatParameter as _FlatParameter
except ImportError:  # pragma: no cover - torch built without distributed
    _FlatParameter = None

try:
    from torch.distributed.tensor import DTensor as _DTensor
except ImportError:  # pragma: no cover
    _DTensor = None


def is_flat_param(p: Tensor) -> bool:
    """A FullyShardedDataParallel (FSDP1) flat parameter: many tensors flattened and sharded."""
    return bool(getattr(p, "_is_flat_param", False)) or (
        _FlatParameter is not None and isinstance(p, _FlatParameter)
    )


def is_dtensor(p: Tensor) -> bool:
    """A DTensor (FSDP2, tensor parallel): its norms are global already."""
    return _DTensor is not None and isinstance(p, _DTensor)


def distributed_world_size() -> int:
    """World size of the default process group, 1 when torch.distributed is not in use."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def all_reduce_sum_(t: Tensor, group: Any) -> None:
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM, group=group)


def collective_device(group: Any) -> torch.device:
    """Where a tensor for a collective on ``group`` must live (NCCL: the current GPU)."""
    backend = str(torch.distributed.get_backend(group)).lower()
    if "nccl" in backend and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _no_graph_break() -> None:  # pragma: no cover - torch without dynamo
    """Stand-in where torch has no ``torch._dynamo.graph_break``."""


# End the torch.compile graph here (as torch.optim does around ``step`` so that AOT sees an
# inference graph and updates parameters in place); a no-op in eager mode. Bound to dynamo's own
# function, not wrapped: dynamo handles its graph break in the caller's frame only when the call
# is to ``graph_break`` itself (a wrapper's nested break makes it give up on the whole step,
# which then runs eagerly with every callee compiled as its own frame, each recompiling).
graph_break = getattr(getattr(torch, "_dynamo", None), "graph_break", _no_graph_break)


try:
    from torch.optim.optimizer import _get_foreach_kernels_supported_devices as _foreach_devices
except ImportError:  # pragma: no cover

    def _foreach_devices() -> list[str]:
        return ["cuda"]


def foreach_supported_devices() -> list[str]:
    """Device types with fast multi-tensor kernels (torch's default foreach choice; not CPU)."""
    return list(_foreach_devices())


try:
    from torch.optim.optimizer import (
        _get_capturable_supported_devices as _capturable_devices,
    )
except ImportError:  # pragma: no cover

    def _capturable_devices() -> list[str]:
        return ["cuda"]


def check_capturable_devices(params: list[Tensor], steps: list[Tensor]) -> None:
    """torch's check (type and message) that ``capturable=True`` runs on a device that supports
    it: torch.optim.Adam raises an AssertionError there (e.g. on the CPU)."""
    devices = _capturable_devices()
    ok = all(
        p.device.type == t.device.type and p.device.type in devices for p, t in zip(params, steps)
    )
    if not ok:
        raise AssertionError(
            f"If capturable=True, params and state_steps must be on supported devices: {devices}."
        )
