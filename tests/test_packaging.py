"""The declared torch floor is the version CI actually installs and tests."""

from __future__ import annotations

import re
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:2])


def test_declared_torch_floor_is_the_version_ci_tests():
    pyproject = (ROOT / "pyproject.toml").read_text()
    floor = re.search(r'"torch>=([0-9.]+)"', pyproject)
    pinned = re.search(r"torch==([0-9.]+)", (ROOT / ".ci" / "run").read_text())
    assert floor and pinned, "pyproject.toml must declare torch>=X and .ci/run install torch==X"
    assert _version(floor.group(1)) == _version(pinned.group(1))
    readme_pin = re.search(r"torch==([0-9.]+)", (ROOT / "README.md").read_text())
    assert readme_pin and readme_pin.group(1) == pinned.group(1)


def test_installed_torch_meets_the_floor():
    floor = re.search(r'"torch>=([0-9.]+)"', (ROOT / "pyproject.toml").read_text())
    assert _version(torch.__version__) >= _version(floor.group(1))
