"""The per-layer figure, also for degenerate input; the core stays free of plots and sweeps."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from scalefree.diagnose import diagnose
from scalefree.plots.diagnose import NothingToDiagnose, depth_profile, distinct, entry_label
from scalefree.plots.layout import notes


def entry(model: nn.Module, label: str, batches=None) -> dict:
    batches = batches or [
        torch.randn(8, 3, generator=torch.Generator().manual_seed(i)) for i in range(2)
    ]
    d = diagnose(model, lambda m, x: m(x).square().mean(), batches)
    return {"diagnosis": d.to_dict(), "label": label, "at": "init"}


def test_lines_per_model(tmp_path):
    torch.manual_seed(0)
    deep = nn.Sequential(*[nn.Linear(3, 3) for _ in range(6)])
    shallow = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    fig = depth_profile([entry(deep, "deep"), entry(shallow, "shallow")], tmp_path / "f.png")
    ax = fig.axes[0]
    assert [len(line.get_xdata()) for line in ax.get_lines()] == [6, 2]
    assert ax.get_yscale() == "log"
    assert ax.get_legend().get_texts()[0].get_text().startswith("deep (spread")
    assert (tmp_path / "f.png").stat().st_size > 5000


class WithUnused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Linear(3, 1, bias=False)
        self.unused = nn.Parameter(torch.ones(4))

    def forward(self, x):
        return self.used(x)


def test_one_tensor_and_zero_tensors(tmp_path):
    one = nn.Linear(3, 1, bias=False)
    fig = depth_profile([entry(one, "one")], tmp_path / "one.png")
    assert len(fig.axes[0].get_lines()[0].get_xdata()) == 1 and not notes(fig)
    assert list(fig.axes[0].get_xticks()) == [1]  # whole tensor indices, no 0.95, 0.96, ...
    # a tensor whose gradient is zero everywhere has no median: skipped, with a note
    e = entry(WithUnused(), "two")
    assert [r["median_sqrt_v"] is None for r in e["diagnosis"]["per_tensor"]] == [True, False]
    fig = depth_profile([e], tmp_path / "two.png")
    assert "1 tensor(s) with zero gradient everywhere" in notes(fig)[0]
    e["diagnosis"]["per_tensor"] = e["diagnosis"]["per_tensor"][:1]
    with pytest.raises(NothingToDiagnose):
        depth_profile([e], tmp_path / "none.png")


def test_distinct_and_labels():
    a = {"model": "ResNet20", "batch_norm": False, "at": "init", "diagnosis": {}}
    assert entry_label(a) == "ResNet20 NoBN (init)"
    assert distinct([a, dict(a), a | {"at": "final"}]) == [a, a | {"at": "final"}]


def test_core_imports_neither_plots_nor_sweep():
    code = (
        "import sys, scalefree.diagnose.core, scalefree.diagnose; "
        "bad = [m for m in sys.modules if m.startswith(('scalefree.plots', 'scalefree.sweep', "
        "'matplotlib'))]; print(bad); assert not bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
