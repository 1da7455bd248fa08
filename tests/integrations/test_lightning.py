"""A Lightning Trainer (real, CPU, 2 epochs) with ScalefreeCallback."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.integrations.common import check_run_dir, data, tiny_net

L = pytest.importorskip("lightning")
from scalefree.integrations.lightning import ScalefreeCallback  # noqa: E402
from scalefree.optim import AdamW  # noqa: E402


class Module(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_net()

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self.net(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return AdamW(self.parameters(), lr=1e-2, weight_decay=1e-4)  # scalefree's own


def test_lightning_writes_statistics_that_plot_histogram_draws(tmp_path):
    x, y = data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    module = Module()
    run_dir = tmp_path / "runs" / "lightning_tiny"
    trainer = L.Trainer(
        max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path),
        num_sanity_val_steps=0,
        callbacks=[ScalefreeCallback(run_dir, interval=2, diagnose_at=("final",))],
    )  # fmt: skip
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64)
    trainer.fit(module, loader, val)
    assert trainer.global_step == 8
    stats, config, result = check_run_dir(run_dir, module, epochs=2, snapshots_per_epoch=2)
    assert stats.step.tolist() == [1, 3, 5, 7]
    assert (config["optim_method"], config["source"]) == ("AdamW", "lightning")
    assert config["eta0"] == 1e-2 and config["weight_decay"] == 1e-4
    assert result["test_error_of"] == "1 - val_acc" and result["steps"] == 8
    with torch.no_grad():  # the trained module's accuracy, computed here
        acc = (module.net(x).argmax(1) == y).double().mean().item()
    assert result["test_error"] == pytest.approx(1 - acc, abs=1e-6)
    assert (run_dir / "diagnose_final.json").exists()
