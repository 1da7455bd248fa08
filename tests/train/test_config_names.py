"""Run-directory names are the run's identity on disk: these are pinned, character for character.

The names below were computed by the code before RunConfig's fields described themselves (issue
"One clear house"). A sweep finds its finished runs by name, so a change here renames every run
directory ever written: if a test here fails, the change is the bug, not the expected name.
"""

from __future__ import annotations

import pytest

from scalefree.train.config import RunConfig

R = {
    "dataset": "CIFAR10",
    "model": "ResNet110",
    "batch_norm": False,
    "optim_method": "AdamW",
    "eta0": 5e-4,
    "weight_decay": 1e-4,
}
HEAD = "CIFAR10_ResNet110_NoBN_AdamW_Eta0_0.0005_WD_0.0001_Scheduler_"
TAIL = "_Loss_Mul_1_Epoch_300_BatchSize_128_Seed_0"

PINNED = [
    (R, f"{HEAD}None{TAIL}_Test"),
    (
        R | {"batch_norm": True, "optim_method": "AdamL2", "eta0": 5e-3, "weight_decay": 0.0},
        "CIFAR10_ResNet110_AdamL2_Eta0_0.005_WD_0_Scheduler_None_Loss_Mul_1_Epoch_300"
        "_BatchSize_128_Seed_0_Test",
    ),
    (
        {"dataset": "CIFAR100", "model": "DenseNetBC100", "optim_method": "AdamProx",
         "eta0": 1e-3, "weight_decay": 5e-5, "train_epochs": 100},
        "CIFAR100_DenseNetBC100_AdamProx_Eta0_0.001_WD_5e-05_Scheduler_None_Loss_Mul_1"
        "_Epoch_100_BatchSize_128_Seed_0_Test",
    ),
    (
        R | {"loss_multiplier": 100.0, "seed": 3},
        f"{HEAD}None_Loss_Mul_100_Epoch_300_BatchSize_128_Seed_3_Test",
    ),
    (R | {"decay_convention": "lr", "amsgrad": True}, f"{HEAD}None{TAIL}_Decay_lr_AMSGrad_Test"),
    (R | {"betas": (0.8, 0.99), "eps": 0.0}, f"{HEAD}None{TAIL}_Betas_0.8_0.99_Eps_0_Test"),
    (
        R | {"no_decay_bias_norm": True, "init_seed": 7},
        f"{HEAD}None{TAIL}_NoDecayBiasNorm_InitSeed_7_Test",
    ),
    (R | {"amp": "bf16", "max_steps": 50}, f"{HEAD}None{TAIL}_AMP_bf16_MaxSteps_50_Test"),
    (R | {"divergence_factor": 50.0}, f"{HEAD}None{TAIL}_DivFactor_50_Test"),
    # Scheduler parameters appear only with the scheduler that reads them.
    (
        R | {"scheduler": "Cosine", "lr_gamma": 0.5, "lr_power": 2.0, "lr_step_size": 30},
        f"{HEAD}Cosine{TAIL}_Test",
    ),
    (R | {"scheduler": "Step"}, f"{HEAD}Step{TAIL}_Test"),
    (
        R | {"scheduler": "Step", "lr_step_size": 30, "lr_gamma": 0.5},
        f"{HEAD}Step{TAIL}_StepSize_30_Gamma_0.5_Test",
    ),
    (
        R | {"scheduler": "Exponential", "lr_gamma": 0.95, "lr_step_size": 30},
        f"{HEAD}Exponential{TAIL}_Gamma_0.95_Test",
    ),
    (
        R | {"scheduler": "Polynomial", "lr_power": 2.0, "lr_gamma": 0.5},
        f"{HEAD}Polynomial{TAIL}_Power_2_Test",
    ),
    (R | {"validation": True}, f"{HEAD}None{TAIL}_Val_0.1"),
    (
        R | {"validation": True, "val_ratio": 0.2, "amsgrad": True, "amp": "bf16", "eps": 1e-6},
        f"{HEAD}None{TAIL}_AMSGrad_Eps_1e-06_AMP_bf16_Val_0.2",
    ),
    # Every suffix at once: their order is part of the name.
    (
        R | {"scheduler": "Step", "lr_step_size": 30, "lr_gamma": 0.5, "decay_convention": "lr",
             "amsgrad": True, "betas": (0.8, 0.99), "eps": 0.0, "no_decay_bias_norm": True,
             "init_seed": 7, "amp": "bf16", "max_steps": 50, "divergence_factor": 50.0,
             "validation": True},
        f"{HEAD}Step{TAIL}_Decay_lr_AMSGrad_Betas_0.8_0.99_Eps_0_NoDecayBiasNorm_InitSeed_7"
        "_AMP_bf16_MaxSteps_50_DivFactor_50_StepSize_30_Gamma_0.5_Val_0.1",
    ),
    # The sweep tests' tiny run, with execution-only settings that must not show.
    (
        {"dataset": "synthetic", "model": "ResNet20", "optim_method": "AdamProxL1", "eta0": 1e-3,
         "weight_decay": 5e-4, "train_epochs": 1, "max_steps": 2, "batchsize": 32,
         "device": "cpu", "compile": "off", "channels_last": "on", "reproducible": True,
         "store_stats": True, "progress": "none", "log_folder": "x"},
        "synthetic_ResNet20_AdamProxL1_Eta0_0.001_WD_0.0005_Scheduler_None_Loss_Mul_1_Epoch_1"
        "_BatchSize_32_Seed_0_MaxSteps_2_Test",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("settings", "name"), PINNED, ids=range(len(PINNED)))
def test_run_directory_names_are_pinned(settings, name):
    assert RunConfig(**settings).run_name() == name
