"""Shared test setup: one thread per xdist worker (CI has 2 cores)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

SHARED_CIFAR10 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-subset"


@pytest.fixture
def cifar10_subset() -> Path:
    """The shared real CIFAR-10 subset; tests using it skip cleanly when it is absent."""
    root = Path(os.environ.get("SCALEFREE_CIFAR10_SUBSET", SHARED_CIFAR10))
    if not (root / "cifar-10-batches-py" / "data_batch_1").is_file():
        pytest.skip(f"shared CIFAR-10 subset not found at {root}")
    return root
