"""A rule's class attributes say what its hooks do (the optimizer reads the attributes only).

``folds_decay`` goes with an own ``_fold_decay``, ``elementwise_decay`` with an own ``_decayed``;
a rule that declares one without the other would take a step without its decay on some path.
"""

from __future__ import annotations

import pytest
import torch

from scalefree.optim import OPTIMIZERS, AdamFamily
from scalefree.optim.family import family_classes
from tests.helpers import assert_close

RULES = [OPTIMIZERS.get(n).factory for n in OPTIMIZERS.names("adam_family")]


def _overrides(cls: type, hook: str) -> bool:
    return getattr(cls, hook) is not getattr(AdamFamily, hook)


@pytest.mark.parametrize("cls", RULES, ids=lambda c: c.__name__)
def test_declared_attributes_match_the_hooks(cls):
    assert cls.folds_decay == _overrides(cls, "_fold_decay")
    assert cls.elementwise_decay == _overrides(cls, "_decayed")
    # A rule that neither folds its decay nor writes it elementwise has it in its post-step.
    if not cls.folds_decay and not cls.elementwise_decay:
        assert _overrides(cls, "_prox")


def test_every_rule_is_registered():
    assert set(family_classes()) >= set(RULES)
    assert {c.__name__ for c in RULES} == {
        "AdamL2", "AdamW", "AdamProx", "AdamProxL2", "AdamProxL1", "AdamProxD", "AdamC", "CWD",
        "CAdamW",
    }  # fmt: skip


def test_the_masked_path_uses_the_declared_elementwise_rule():
    """AdamProx with caution takes the masked path through its ``_decayed``: with phi = 1 (first
    step) it equals the folded torch path."""
    out = []
    for caution in (False, True):
        x = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
        x.grad = torch.tensor([0.3, 0.2, -0.1], dtype=torch.float64)
        opt = OPTIMIZERS.get("AdamProx").factory([x], lr=0.1, weight_decay=0.5, fused=True,
                                                 caution=caution)  # fmt: skip
        opt.step()
        out.append((x.detach().clone(), opt.step_paths()))
    assert out[0][1] == ("torch:fused",) and out[1][1] == ("masked:foreach",)
    assert_close(out[1][0], out[0][0])
