"""Private torch APIs live in optim/_torch_compat.py only, each with a fallback or a clear error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

import scalefree
from scalefree.optim import AdamW
from scalefree.optim import _torch_compat as tc
from tests.helpers import assert_close

SRC = Path(scalefree.__file__).parent
# A private name reached through torch: torch._x, torch.a._b, from torch.x import _y, torch.a._b.c
PRIVATE = re.compile(r"\btorch(\.[A-Za-z]\w*)*\._[A-Za-z]|from torch[\w.]* import .*\b_[A-Za-z]")
NN_PRIVATE = re.compile(r"\bnn\.modules\.\w+\._[A-Za-z]")


def test_no_private_torch_name_outside_the_compat_module():
    offenders = [
        f"{path.relative_to(SRC)}:{i}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "_torch_compat.py"
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if PRIVATE.search(line) or NN_PRIVATE.search(line)
    ]
    assert offenders == []


def test_the_pattern_catches_what_it_should():
    assert PRIVATE.search("torch._foreach_mul_(a, b)")
    assert PRIVATE.search("from torch.optim.optimizer import _get_scalar_dtype")
    assert PRIVATE.search("fn = torch._C._nn.softshrink")
    assert NN_PRIVATE.search("nn.modules.batchnorm._NormBase")
    assert not PRIVATE.search("torch.optim.AdamW(params)")


def test_missing_api_error_names_the_torch_version_needed():
    with pytest.raises(
        RuntimeError, match=r"needs torch\.x\.y, .*torch 2\.13 and later.*torch>=2\.13"
    ):
        tc._missing("torch.x.y")()


def _adamw_steps(monkeypatch, decouples: bool) -> torch.Tensor:
    monkeypatch.setattr(tc, "_ADAM_DECOUPLES", decouples)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, generator=gen, dtype=torch.float64, requires_grad=True)
    opt = AdamW([x], lr=0.1, weight_decay=0.3, foreach=False)  # torch's single-tensor kernel
    for _ in range(3):
        x.grad = torch.randn(5, generator=gen, dtype=torch.float64)
        opt.step()
    return x.detach()


def test_torch_without_decoupled_flag_takes_its_adamw_function(monkeypatch):
    """Older torch has no ``decoupled_weight_decay=`` in adam(); adamw() gives the same step."""
    if tc._torch_adamw is None:
        pytest.skip("this torch has no torch.optim.adamw.adamw")
    assert_close(_adamw_steps(monkeypatch, False), _adamw_steps(monkeypatch, True))


def test_foreach_mul_and_norm_base():
    a, b = torch.ones(2), torch.ones(3)
    tc.foreach_mul_([a, b], torch.tensor(2.0))
    tc.foreach_mul_([a, b], [torch.tensor(3.0), torch.tensor(0.5)])
    assert a.tolist() == [6.0, 6.0] and b.tolist() == [1.0, 1.0, 1.0]
    base = tc.norm_layer_base()
    assert all(isinstance(m, base) for m in (nn.BatchNorm2d(2), nn.InstanceNorm1d(2)))
    assert not isinstance(nn.Linear(2, 2), base)
