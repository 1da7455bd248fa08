"""RunConfig naming/validation, update-statistics binning, checkpoint integrity."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from scalefree.errors import UsageError
from scalefree.train import checkpoint as ckpt
from scalefree.train.config import RunConfig, fmt_num
from scalefree.train.stats import (
    BIN_EXPONENTS,
    NUM_BINS,
    StatsRecorder,
    histogram_counts,
    iqr_log2,
    load_stats,
    log2_bin_index,
)


def test_run_name_matches_reference_example():
    c = RunConfig(
        optim_method="adamw",
        eta0=0.0005,
        weight_decay=0.0001,
        model="resnet110",
        batch_norm=False,
        dataset="cifar10",
    )
    assert c.run_name() == (
        "CIFAR10_ResNet110_NoBN_AdamW_Eta0_0.0005_WD_0.0001_Scheduler_None_Loss_Mul_1"
        "_Epoch_300_BatchSize_128_Seed_0_Test"
    )


def test_non_default_settings_make_distinct_names():
    base = RunConfig()
    variants = [
        base.replace(decay_convention="lr"),
        base.replace(amsgrad=True),
        base.replace(eps=0.0),
        base.replace(betas=(0.9, 0.99)),
        base.replace(no_decay_bias_norm=True),
        base.replace(scheduler="Step", lr_step_size=50),
        base.replace(validation=True),
    ]
    names = {v.run_name() for v in variants} | {base.run_name()}
    assert len(names) == len(variants) + 1
    # execution-only settings do not change the name (a run resumes on another device)
    assert base.replace(device="cpu", compile=True, log_folder="x").run_name() == base.run_name()


@pytest.mark.parametrize(
    "x,s",
    [
        (0.0005, "0.0005"),
        (5e-05, "5e-05"),
        (1.0, "1"),
        (0, "0"),
        (10.0, "10"),
        (0.001, "0.001"),
        (1e-4, "0.0001"),
    ],
)
def test_fmt_num(x, s):
    assert fmt_num(x) == s


def test_config_dict_round_trip():
    c = RunConfig(betas=(0.8, 0.9), max_steps=3, init_seed=4)
    assert RunConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    "kw,msg",
    [
        ({"eta0": 0.0}, "--eta0 must be a positive finite number, got 0.0"),
        (
            {"weight_decay": -1e-4},
            "--weight-decay must be a non-negative finite number, got -0.0001",
        ),
        ({"train_epochs": 0}, "--train-epochs must be a positive integer, got 0"),
        (
            {"scheduler": "cosine"},
            "--scheduler must be one of None, Cosine, Step, Exponential, Polynomial",
        ),
        ({"loss_multiplier": 0.0}, "--loss-multiplier must be a positive finite number"),
        ({"dataset": "MNIST"}, "--dataset: unknown dataset 'MNIST'"),
    ],
)
def test_config_validation_names_the_flag(kw, msg):
    with pytest.raises(UsageError) as err:
        RunConfig(**kw)
    assert msg in str(err.value)


def test_log2_bins_exact_edges_zero_and_clamping():
    v = torch.tensor(
        [0.0, -0.0, 2.0**-40, 2.0**-27, 2.0**-26, 0.75, 0.5, 0.4999999, 1.0, 1e9, -3.0]
    )
    idx = log2_bin_index(v).tolist()
    e = [BIN_EXPONENTS[i] for i in idx]
    assert e == [-27, -27, -27, -27, -26, -1, -1, -2, 0, 0, 0]
    # every exact power of two lands in its own bin (no floating-point log2 rounding)
    for k in range(-27, 1):
        assert BIN_EXPONENTS[int(log2_bin_index(torch.tensor([2.0**k])))] == k
        assert BIN_EXPONENTS[int(log2_bin_index(torch.tensor([2.0**k * 1.999])))] == k


def test_histogram_counts_per_layer():
    a = torch.tensor([0.0, 0.5, 0.5])
    b = torch.tensor([[2.0, 2.0**-10]])
    counts = histogram_counts([a, b])
    assert counts.shape == (2, NUM_BINS) and counts.sum(1).tolist() == [3, 2]
    assert counts[0, 26] == 2 and counts[0, 0] == 1 and counts[1, 27] == 1 and counts[1, 17] == 1


def test_iqr_log2_interpolates_and_handles_empty():
    c = np.zeros(NUM_BINS)
    c[5] = 100
    assert iqr_log2(c) == pytest.approx(0.5)  # uniform within one bin: quartiles at 5.25 and 5.75
    c[15] = 100
    assert iqr_log2(c) == pytest.approx(10.0)
    assert np.isnan(iqr_log2(np.zeros(NUM_BINS)))


def test_recorder_round_trip_and_resnet110_snapshot_size(tmp_path):
    from scalefree.models import build_model
    from scalefree.train.trainer import stats_layers

    layers = stats_layers(build_model("ResNet110", batch_norm=False))
    rec = StatsRecorder(tmp_path / "stats", [n for n, _ in layers])
    tensors = [p.detach() for _, p in layers]
    rec.record(1, 0, 1, {q: tensors for q in ("update_over_alpha", "update", "grad", "param")})
    path = rec.flush(1)
    assert path.stat().st_size < 60_000  # kilobytes, not the reference's ~20 MB of raw arrays
    stats = load_stats(tmp_path)
    assert stats.counts.shape == (1, 4, len(layers), NUM_BINS)
    assert stats.counts[0, 0].sum() == sum(t.numel() for t in tensors)
    assert stats.fractions("param").sum() == pytest.approx(1.0)
    assert stats.spread("param").shape == (1,)


def payload(epoch: int) -> dict:
    """The smallest checkpoint payload load_checkpoint accepts."""
    g = torch.Generator().manual_seed(0)
    return {"epoch": epoch, "step": epoch, "wall_time_s": 0.0, "model": {}, "optimizer": {}} | {
        "rng": ckpt.rng_state(g)
    }


def test_checkpoint_falls_back_to_previous_when_latest_is_corrupt(tmp_path):
    ckpt.save_checkpoint(tmp_path, payload(1))
    ckpt.save_checkpoint(tmp_path, payload(2))
    assert ckpt.load_checkpoint(tmp_path)[0]["epoch"] == 2
    latest = tmp_path / ckpt.LATEST
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 2])  # truncated
    state, notes = ckpt.load_checkpoint(tmp_path)
    assert state["epoch"] == 1 and "checksum" in notes[0]
    # flip one byte of the previous one too: no silent restart, a clear error
    prev = tmp_path / ckpt.PREVIOUS
    blob = bytearray(prev.read_bytes())
    blob[-5] ^= 0xFF
    prev.write_bytes(bytes(blob))
    with pytest.raises(ckpt.CheckpointError, match="Delete the run directory"):
        ckpt.load_checkpoint(tmp_path)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    ckpt.save_checkpoint(tmp_path, payload(1))

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(tmp_path, payload(2))
    monkeypatch.undo()
    assert ckpt.load_checkpoint(tmp_path)[0]["epoch"] == 1
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
