"""The Adam weight-decay family, torch.optim baselines, one registry, and the scale-free checker."""

from scalefree.optim.adam_family import (
    CWD,
    AdamC,
    AdamFamily,
    AdamL2,
    AdamProx,
    AdamProxD,
    AdamProxL1,
    AdamProxL2,
    AdamW,
    CAdamW,
)

__all__ = ["AdamFamily", "AdamL2", "AdamW", "AdamProx", "AdamProxL2", "AdamProxL1", "AdamProxD"]
__all__ += ["AdamC", "CWD", "CAdamW"]
from scalefree.optim.groups import param_groups  # noqa: E402
from scalefree.optim.registry import OPTIMIZERS, build_optimizer  # noqa: E402
from scalefree.optim.scale_free import check_scale_free  # noqa: E402

__all__ += ["OPTIMIZERS", "build_optimizer", "param_groups", "check_scale_free"]
