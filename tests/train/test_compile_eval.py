"""--compile auto|on|off (old boolean configs still load, names unchanged) and the evaluation path."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
import torch.nn.functional as F

from scalefree.cli import build_parser
from scalefree.data import eval_batches
from scalefree.models import build_model
from scalefree.train import machine
from scalefree.train import trainer as trainer_mod
from scalefree.train.cli import config_from_args
from scalefree.train.config import RunConfig
from scalefree.train.trainer import COMPILE_MIN_STEPS, DistContext, evaluate, resolve_compile
from tests.train.test_trainer import tiny

CPU = torch.device("cpu")


def parse(*argv: str) -> RunConfig:
    return config_from_args(build_parser().parse_args(["train", *argv]))


def test_compile_flag_keeps_the_old_switch_and_takes_a_mode():
    assert parse().compile == "auto"
    assert parse("--compile").compile == "on"  # the old switch
    assert parse("--compile", "--seed", "3").compile == "on"
    for mode in ("auto", "on", "off"):
        assert parse("--compile", mode).compile == mode
        assert parse(f"--compile={mode}").compile == mode
    with pytest.raises(SystemExit) as exc:
        parse("--compile", "yes")
    assert exc.value.code == 2


def test_boolean_compile_of_older_configs_loads_and_keeps_the_run_name():
    old = RunConfig().to_dict() | {"compile": True}
    assert RunConfig.from_dict(old).compile == "on"
    assert RunConfig.from_dict(old | {"compile": False}).compile == "off"
    assert RunConfig(compile=True).compile == "on"
    names = {RunConfig(compile=c).run_name() for c in (True, False, "auto", "on", "off")}
    assert names == {RunConfig().run_name()}
    assert RunConfig(compile=False).identity() == RunConfig(compile="auto").identity()


def test_resolve_compile(monkeypatch):
    long = COMPILE_MIN_STEPS["cpu"]
    assert resolve_compile(RunConfig(compile="on"), CPU, 1) is True
    assert resolve_compile(RunConfig(compile="off"), CPU, 10 * long) is False
    monkeypatch.setattr(machine, "_compiler_available", lambda device: True)
    auto = RunConfig(compile="auto")
    assert resolve_compile(auto, CPU, long) is True
    assert resolve_compile(auto, CPU, long - 1) is False  # too short to earn the compile back
    assert resolve_compile(auto.replace(reproducible=True), CPU, 10 * long) is False
    monkeypatch.setattr(machine, "_compiler_available", lambda device: False)
    assert resolve_compile(auto, CPU, 10 * long) is False


def test_short_auto_run_records_eager(tmp_path):
    out = trainer_mod.train(tiny(tmp_path, compile="auto", reproducible=False))
    env = json.loads((out.run_dir / "config.json").read_text())["env"]
    assert env["compile_resolved"] is False
    assert out.result["status"] == "completed"


@torch.no_grad()
def _no_grad_reference(model, images, labels, mean, std, batch):
    """The evaluation before issue 13: torch.no_grad, any batch size, NCHW float32."""
    model.eval()
    loss, correct = 0.0, 0
    for x, y in eval_batches(images, labels, batch, mean, std):
        logits = model(x)
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
    model.train()
    return loss / len(images), correct / len(images)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("batch_size", [None, 7, 64])
def test_evaluate_matches_the_no_grad_reference(channels_last, batch_size):
    torch.manual_seed(0)
    model = build_model("ResNet20", num_classes=10, batch_norm=True)
    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (40,))
    mean, std = torch.tensor([120.0, 115.0, 100.0]), torch.tensor([60.0, 62.0, 65.0])
    want = _no_grad_reference(model, images, labels, mean, std, batch=40)
    run_model = model.to(memory_format=torch.channels_last) if channels_last else model
    got = evaluate(
        run_model,
        images,
        labels,
        mean,
        std,
        loss_multiplier=2.0,
        amp_ctx=contextlib.nullcontext,
        channels_last=channels_last,
        ctx=DistContext(),
        batch_size=batch_size,
    )
    assert got[1] == want[1]
    assert got[0] == pytest.approx(2.0 * want[0], rel=1e-5)
    assert model.training  # back in train mode
    # parameters are still ordinary tensors that autograd can train
    assert all(not p.is_inference() and p.requires_grad for p in model.parameters())
