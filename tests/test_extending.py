"""Adding an optimizer and a model is one registry entry each.

A toy sign-descent optimizer and a toy MLP are registered (one entry each, nothing else edited)
and run through the whole CLI in-process: ``train`` on synthetic data, ``sweep --dry-run`` over the
toy optimizer, then ``plot`` and ``report`` on the runs written. The figures and the report must
show the toy optimizer with its entry's colour and order. Both entries are removed afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D
from matplotlib.text import Text
from torch import nn

from scalefree.cli import main
from scalefree.models import MODELS, ModelEntry, build_model
from scalefree.optim import OPTIMIZERS
from scalefree.optim.registry import OptimizerEntry, accepted_options, build_optimizer
from scalefree.plots import layout
from scalefree.registry import UnknownNameError

TOY_OPT, TOY_MODEL, TOY_COLOR = "ToySignSGD", "ToyMLP", "tab:orange"


class SignSGD(torch.optim.Optimizer):
    """x <- x - lr * (sign(g) + weight_decay * x): a few lines, no scalefree code."""

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign() + group["weight_decay"] * p, alpha=-group["lr"])
        return loss


def toy_mlp(num_classes: int, hidden: int = 16) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(3 * 32 * 32, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
    )


@pytest.fixture
def toys():
    """The two entries, registered for one test and removed after it (also on failure)."""
    opt = OptimizerEntry(TOY_OPT, SignSGD, "sign descent (toy)", color=TOY_COLOR, order=-1)
    model = ModelEntry(TOY_MODEL, toy_mlp, "2-layer MLP (toy)", batch_norm_option=False)
    with OPTIMIZERS.registered(opt), MODELS.registered(model):
        yield
    assert TOY_OPT not in OPTIMIZERS and TOY_MODEL not in MODELS


def test_registered_entries_are_found_and_built(toys):
    assert OPTIMIZERS.canonical(TOY_OPT.lower()) == TOY_OPT
    assert accepted_options(TOY_OPT) == frozenset()
    model = build_model(TOY_MODEL, num_classes=7, batch_norm=True)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    opt = build_optimizer(TOY_OPT, model.parameters(), lr=0.1)
    assert isinstance(opt, SignSGD)


def test_unregister_and_registered_restore_the_registry():
    before = OPTIMIZERS.names()
    entry = OptimizerEntry(TOY_OPT, SignSGD, "toy")
    with pytest.raises(RuntimeError, match="boom"):
        with OPTIMIZERS.registered(entry):
            assert OPTIMIZERS.names() == (*before, TOY_OPT)
            raise RuntimeError("boom")
    assert OPTIMIZERS.names() == before
    OPTIMIZERS.register(entry)
    assert OPTIMIZERS.unregister(TOY_OPT.upper()) is entry
    assert OPTIMIZERS.names() == before
    with pytest.raises(UnknownNameError, match=f"unknown optimizer '{TOY_OPT}'"):
        OPTIMIZERS.unregister(TOY_OPT)


def test_a_registry_takes_only_its_own_entry_type():
    with pytest.raises(TypeError, match="takes OptimizerEntry entries, not ModelEntry"):
        OPTIMIZERS.register(ModelEntry(TOY_OPT, toy_mlp, "wrong kind"))
    with pytest.raises(ValueError, match="no capability 'adam_familly'"):
        OPTIMIZERS.names("adam_familly")


def _train(logs: Path, eta0: str) -> int:
    return main(
        ["train", "--dataset", "synthetic",
         "--model", TOY_MODEL, "--optim-method", TOY_OPT, "--eta0", eta0, "--weight-decay", "0",
         "--train-epochs", "1", "--max-steps", "2", "--batchsize", "32", "--device", "cpu",
         "--log-folder", str(logs), "--progress", "none"]
    )  # fmt: skip


def _spy_on_figures(monkeypatch) -> dict[str, tuple[list[str], set]]:
    """PNG name -> (every text, every line colour) of the figure written there."""
    drawn: dict[str, tuple[list[str], set]] = {}
    real = layout.save_png

    def spy(fig, path):
        texts = [t.get_text() for t in fig.findobj(Text)]
        colors = {to_rgba(line.get_color()) for line in fig.findobj(Line2D)}
        drawn[Path(path).name] = (texts, colors)
        return real(fig, path)

    monkeypatch.setattr(layout, "save_png", spy)
    return drawn


def test_toy_optimizer_and_model_run_through_train_sweep_plot_and_report(
    toys, tmp_path, capsys, monkeypatch
):
    logs = tmp_path / "logs"
    assert _train(logs, "0.01") == 0
    assert _train(logs, "0.001") == 0
    runs = [d for d in logs.iterdir() if TOY_OPT in d.name]
    assert len(runs) == 2 and all(TOY_MODEL in d.name for d in runs)
    capsys.readouterr()

    dry = ["sweep", "--dataset", "synthetic", "--model", TOY_MODEL, "--optim-methods", TOY_OPT,
           "AdamW", "--eta0-vals", "1e-3", "--weight-decay-vals", "0", "--log-folder",
           str(tmp_path / "dry"), "--dry-run"]  # fmt: skip
    assert main(dry) == 0
    out = capsys.readouterr().out
    assert TOY_OPT in out and TOY_MODEL in out
    assert not (tmp_path / "dry").exists() or not any((tmp_path / "dry").iterdir())

    drawn = _spy_on_figures(monkeypatch)
    figs = tmp_path / "figs"
    assert main(["plot", "curves", str(logs), "--out", str(figs)]) == 0
    assert (figs / "curves.png").stat().st_size > 0
    ((texts, colors),) = drawn.values()
    assert any(TOY_OPT in t for t in texts)  # the legend names the toy optimizer
    assert to_rgba(TOY_COLOR) in colors  # drawn in its entry's colour

    rep = tmp_path / "rep"
    assert main(["report", str(logs), "--out", str(rep)]) == 0
    text = (rep / "report.md").read_text()
    assert TOY_OPT in text and TOY_MODEL in text


def test_plot_order_and_colour_come_from_the_entry(toys):
    from scalefree.plots.figures import METHOD_COLORS, method_color
    from scalefree.plots.tables import METHOD_ORDER, method_sort_key

    assert METHOD_ORDER[0] == TOY_OPT  # order=-1: before the paper's methods
    assert method_sort_key(TOY_OPT) < method_sort_key("AdamL2")
    assert METHOD_COLORS[TOY_OPT] == method_color(TOY_OPT) == TOY_COLOR
