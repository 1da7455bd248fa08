"""The Hugging Face Trainer (real, CPU, a tiny model) with ScalefreeCallback."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from tests.integrations.common import check_run_dir, data, tiny_net

pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # the Trainer needs it
from transformers import Trainer, TrainingArguments  # noqa: E402

from scalefree.integrations.huggingface import ScalefreeCallback  # noqa: E402


class Classifier(nn.Module):
    """A model as the Trainer calls it: keyword inputs, a ``loss`` output with labels."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_net()

    def forward(self, x, labels=None):
        logits = self.net(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


class Dataset(torch.utils.data.Dataset):
    def __init__(self) -> None:
        self.x, self.y = data()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i]}


def accuracy(prediction) -> dict[str, float]:
    logits, labels = prediction.predictions, prediction.label_ids
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


def test_trainer_writes_statistics_that_plot_histogram_draws(tmp_path):
    model = Classifier()
    args = TrainingArguments(
        output_dir=str(tmp_path / "hf"), num_train_epochs=2, per_device_train_batch_size=16,
        learning_rate=1e-2, weight_decay=0.01, report_to=[], use_cpu=True, save_strategy="no",
        disable_tqdm=True, logging_steps=1, seed=0, eval_strategy="epoch",
        per_device_eval_batch_size=64,
    )  # fmt: skip
    run_dir = tmp_path / "runs" / "hf_tiny"
    callback = ScalefreeCallback(run_dir, interval=2, diagnose_at=("init", "final"))
    trainer = Trainer(
        model=model, args=args, train_dataset=Dataset(), eval_dataset=Dataset(),
        compute_metrics=accuracy, callbacks=[callback],
    )  # fmt: skip
    trainer.train()
    assert trainer.state.global_step == 8  # 4 steps per epoch
    stats, config, result = check_run_dir(run_dir, model, epochs=2, snapshots_per_epoch=2)
    assert stats.step.tolist() == [1, 3, 5, 7]
    assert (config["optim_method"], config["source"]) == ("AdamW", "transformers")
    assert config["eta0"] == 1e-2 and config["weight_decay"] == 0.01
    assert result["steps"] == 8 and result["test_error_of"] == "1 - eval_accuracy"
    x, y = data()
    with torch.no_grad():  # the trained model's accuracy, computed here
        acc = (model(x)["logits"].argmax(1) == y).double().mean().item()
    assert result["test_error"] == pytest.approx(1 - acc, abs=1e-12)
    init = json.loads((run_dir / "diagnose_init.json").read_text())
    assert init["diagnosis"]["per_tensor"] and init["batches"] == 4
