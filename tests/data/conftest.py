"""Fixtures of the data tests: tiny official-format CIFAR folders in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.cifar_fixture import make_fake_cifar


@pytest.fixture
def fake_cifar10(tmp_path: Path) -> Path:
    """A dataroot holding a 5 x 20 train / 20 test CIFAR-10 in the official layout."""
    make_fake_cifar(tmp_path, "CIFAR10", n_train_per_batch=20, n_test=20)
    return tmp_path


@pytest.fixture
def fake_cifar100(tmp_path: Path) -> Path:
    """A dataroot holding a 230 train / 40 test CIFAR-100 in the official layout."""
    make_fake_cifar(tmp_path, "CIFAR100", n_train_per_batch=230, n_test=40)
    return tmp_path
