"""How differently would AdamL2 decay the coordinates of a model? (issue 20, part 1)

At fixed weights, :func:`diagnose` averages the squared gradient of every coordinate over a few
batches, ``v_hat = mean_b g_b^2`` (the quantity Adam's second moment tracks), and summarizes how
widely ``sqrt(v_hat)`` is spread. AdamL2 folds the decay into the gradient, so a coordinate's
weight decay is divided by Adam's denominator: its effective decay rate is
``lambda / (sqrt(v_hat) + eps)``. At ``eps = 0`` the log2 spread of that rate over coordinates is
exactly the log2 spread of ``sqrt(v_hat)`` (``log2(lambda / s) = log2 lambda - log2 s``: a shift
and a reflection, which keep an interquartile range); AdamW decays every coordinate alike (spread
0). Multiplying the loss by ``c`` multiplies every ``sqrt(v_hat)`` by ``c`` and leaves both
spreads unchanged.

Definitions (all quantiles linear interpolation between order statistics, like
``torch.quantile``):

* ``spread``: ``Q75 - Q25`` of ``log2 sqrt(v_hat)`` pooled over every analyzed coordinate whose
  ``v_hat > 0``;
* ``spread_eps``: the same of ``log2(sqrt(v_hat) + eps)`` over every coordinate (zeros included),
  the spread of AdamL2's effective decay at the given ``eps``;
* per tensor: ``median_sqrt_v`` (median of ``sqrt(v_hat)`` over its coordinates with ``v_hat > 0``,
  None when there are none), ``rms_grad = sqrt(mean v_hat)`` (all coordinates), ``rms_weight``,
  ``zero_coords``;
* ``layer_spread``: ``log2(max / min)`` of the per-tensor medians (tensors without one left out).

Coordinates whose gradient is zero in every batch (``v_hat = 0``: dead units, unused
parameters) would give ``log2 0 = -inf``; they are left out of ``spread`` and of the medians and
counted in ``zero_coords`` instead, so a diagnosis never holds an infinity.

The model is left exactly as it was: parameter values (never written), ``.grad`` (the very same
tensor objects, or None), ``requires_grad``, every submodule's train/eval mode, every buffer
(BatchNorm's running statistics are updated by a train-mode forward; they are copied back) and
the global RNG state (dropout draws from it).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from scalefree.optim.groups import no_decay_names

from .result import DiagnoseError, Diagnosis, TensorRow, quantiles

LossFn = Callable[[nn.Module, Any], torch.Tensor]


def analyzed_names(
    model: nn.Module, include_bias_norm: bool = False
) -> tuple[list[str], list[str]]:
    """(analyzed, excluded) parameter names in ``named_parameters()`` order.

    Left out: parameters that do not require grad, and unless ``include_bias_norm`` the biases and
    normalization parameters, by the rule of the decay groups
    (:func:`scalefree.optim.groups.no_decay_names`, what ``--no-decay-bias-norm`` leaves undecayed).
    """
    skip = set() if include_bias_norm else no_decay_names(model)
    analyzed, excluded = [], []
    for name, p in model.named_parameters():
        (analyzed if p.requires_grad and name not in skip else excluded).append(name)
    return analyzed, excluded


def diagnose(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Iterable[Any],
    eps: float = 1e-8,
    *,
    include_bias_norm: bool = False,
    device: str | torch.device | None = None,
    train_mode: bool | None = True,
    progress: bool = False,
) -> Diagnosis:
    """Per-coordinate ``v_hat = mean over batches of g^2`` at the model's current weights, summarized.

    ``loss_fn(model, batch)`` returns a scalar loss tensor; ``batches`` is any iterable of the
    caller's batches (consumed once). ``train_mode``: run the forward passes in train mode (True,
    the default: the gradients a training step sees, BatchNorm on batch statistics), in eval mode
    (False) or in the mode the model is in (None). ``device``: compute there (on a copy of the
    model when it lives elsewhere; tensors in the batches are moved along), default: where the
    model is. ``eps`` only enters ``spread_eps``. ``progress`` shows a bar. Nothing is stepped and
    the model is left exactly as it was (module docstring). Raises :class:`DiagnoseError` for no
    batches, a loss that is not a finite scalar, or no analyzed parameter receiving a gradient.
    """
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
        raise DiagnoseError(f"eps must be a finite number >= 0, got {eps!r}")
    names, excluded = analyzed_names(model, include_bias_norm)
    if not names:
        raise DiagnoseError(
            "no parameter to analyze: none requires grad"
            + ("" if include_bias_norm else " outside the biases and normalization layers")
        )
    target = _on_device(model, device)
    dev = None if device is None else torch.device(device)
    with _preserved(model), _preserved(target), _rng_forked(target):
        if train_mode is not None:
            target.train(train_mode)
        sums, count, got_grad = _accumulate(target, names, loss_fn, batches, dev, progress)
    if count == 0:
        raise DiagnoseError("batches is empty: pass at least one batch")
    if not got_grad:
        raise DiagnoseError(
            "no analyzed parameter received a gradient: does the loss depend on the parameters "
            f"({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})?"
        )
    params = dict(target.named_parameters())
    return summarize(
        {n: sums[n] / count for n in names}, {n: params[n] for n in names}, eps, count, excluded
    )


def _accumulate(
    model: nn.Module,
    names: list[str],
    loss_fn: LossFn,
    batches: Iterable[Any],
    device: torch.device | None,
    progress: bool,
) -> tuple[dict[str, torch.Tensor], int, bool]:
    """Sums of g^2 per analyzed parameter over the batches, the batch count, whether any
    analyzed parameter ever received a gradient."""
    params = dict(model.named_parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    sums: dict[str, torch.Tensor] = {}
    for n in names:
        p = params[n]
        acc = torch.float32 if p.device.type == "mps" else torch.float64
        sums[n] = torch.zeros(p.shape, dtype=acc, device=p.device)
    count, got_grad = 0, False
    for batch in _bar(batches, progress):
        if device is not None:
            batch = _to_device(batch, device)
        for p in trainable:
            p.grad = None
        loss = loss_fn(model, batch)
        _check_loss(loss, count)
        loss.backward()
        for n in names:
            g = params[n].grad
            if g is not None:
                sums[n].add_(g.detach().to(sums[n].dtype).square())
                got_grad = True
        count += 1
    for p in trainable:
        p.grad = None
    return sums, count, got_grad


def _check_loss(loss: Any, index: int) -> None:
    if not isinstance(loss, torch.Tensor):
        raise DiagnoseError(
            f"loss_fn returned a {type(loss).__name__} for batch {index}; it must return a scalar "
            "tensor (the loss, e.g. F.cross_entropy(model(x), y))"
        )
    if loss.numel() != 1:
        raise DiagnoseError(
            f"loss_fn returned a tensor of shape {tuple(loss.shape)} for batch {index}; it must "
            "return a scalar (reduce it, e.g. loss.mean())"
        )
    if not loss.requires_grad:
        raise DiagnoseError(
            f"the loss of batch {index} does not require grad: no parameter has a gradient "
            "(computed under torch.no_grad(), or every parameter frozen?)"
        )
    if not torch.isfinite(loss.detach()).all():
        raise DiagnoseError(f"the loss of batch {index} is not finite ({loss.item()})")


def summarize(
    v_hat: dict[str, torch.Tensor],
    params: dict[str, torch.Tensor],
    eps: float,
    num_batches: int,
    excluded: Iterable[str] = (),
) -> Diagnosis:
    """The :class:`Diagnosis` of per-parameter ``v_hat`` tensors (module docstring's definitions)."""
    rows, logs, logs_eps = [], [], []
    for name, v in v_hat.items():
        s = v.detach().to(torch.float64).clamp_min(0).sqrt().reshape(-1)
        nonzero = s[s > 0]
        if not torch.isfinite(s).all():
            raise DiagnoseError(f"the gradient of {name} is not finite")
        w = params[name].detach().to(torch.float64)
        rows.append(
            TensorRow(
                name=name,
                shape=tuple(v.shape),
                numel=s.numel(),
                median_sqrt_v=quantiles(nonzero, [0.5])[0] if nonzero.numel() else None,
                rms_grad=math.sqrt(float(v.to(torch.float64).mean())) if s.numel() else 0.0,
                rms_weight=math.sqrt(float(w.square().mean())) if w.numel() else 0.0,
                zero_coords=int(s.numel() - nonzero.numel()),
            )
        )
        logs.append(nonzero.log2().cpu())
        logs_eps.append((s + eps).log2().cpu() if eps > 0 else logs[-1])
    pooled = torch.cat(logs) if logs else torch.zeros(0, dtype=torch.float64)
    num = sum(r.numel for r in rows)
    if pooled.numel():
        q = quantiles(pooled)
        spread = q[2] - q[0]
        qe = quantiles(torch.cat(logs_eps))
        spread_eps = qe[2] - qe[0]
        q_sqrt: dict[str, float | None] = {k: 2.0**x for k, x in zip(("q25", "q50", "q75"), q)}
    else:
        spread, spread_eps = None, 0.0
        q_sqrt = {"q25": None, "q50": None, "q75": None}
    medians = [r.median_sqrt_v for r in rows if r.median_sqrt_v is not None]
    layer_spread = math.log2(max(medians) / min(medians)) if medians else None
    return Diagnosis(
        per_tensor=tuple(rows),
        spread=spread,
        layer_spread=layer_spread,
        spread_eps=spread_eps,
        eps=float(eps),
        num_batches=num_batches,
        num_coords=num,
        zero_coords=sum(r.zero_coords for r in rows),
        quantiles_sqrt_v=q_sqrt,
        excluded=tuple(excluded),
    )


# ------------------------------------------------------------------------ leaving the model as is


@contextlib.contextmanager
def _preserved(model: nn.Module) -> Iterator[None]:
    """Put back every module's mode, every parameter's ``.grad`` object and ``requires_grad``,
    and every buffer's values (also when the block raises)."""
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.grad, p.requires_grad) for p in model.parameters()]
    buffers = [
        (m, name, b, b.detach().clone())
        for m in model.modules()
        for name, b in m._buffers.items()
        if b is not None
    ]
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training
        for p, grad, requires in grads:
            p.grad = grad
            p.requires_grad_(requires)
        with torch.no_grad():
            for m, name, b, saved in buffers:
                m._buffers[name] = b  # a module that rebinds a buffer gets its own tensor back
                b.copy_(saved)


@contextlib.contextmanager
def _rng_forked(model: nn.Module) -> Iterator[None]:
    """Dropout and the like draw from the global RNG: leave the caller's stream as it was."""
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        yield


def _on_device(model: nn.Module, device: str | torch.device | None) -> nn.Module:
    """The model itself, or a copy on ``device`` when its parameters live elsewhere."""
    if device is None:
        return model
    device = torch.device(device)
    if all(_same_device(p.device, device) for p in model.parameters()):
        return model
    return copy.deepcopy(model).to(device)


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index or 0) == (b.index or 0)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (list, tuple)):
        moved = [_to_device(b, device) for b in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _bar(batches: Iterable[Any], progress: bool) -> Iterable[Any]:
    if not progress:
        return batches
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency, but a missing bar must not stop the diagnosis
        return batches
    total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
    return tqdm(batches, total=total, unit="batch", desc="diagnose", leave=False)
