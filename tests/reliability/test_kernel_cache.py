"""The C++ kernel's build cache broken in every way a user meets it: training goes on, on the pure-torch
path, with one warning naming the cause and the fix (issue 22, item 4).

torch's loader is replaced by a stand-in (no minute-long builds in tests): the checks that matter
run before it (optim/_kernel_cache.py), and the stand-in says whether they let the load happen.
Before these checks, a stale build lock hung every process forever and a truncated library killed
the process with SIGBUS; an unusable cache fell back silently.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch.utils.cpp_extension

from scalefree.optim import _kernel_cache, _kernels
from tests.optim.test_adam_family import assert_matches, run_pair
from tests.reliability.test_files_are_data import run

WARNING = "scalefree: warning: the one-pass CPU Adam kernel is not used: "


@pytest.fixture
def loads(monkeypatch):
    """A fresh kernel state, and torch's ``load`` replaced: returns the list of its calls."""
    monkeypatch.delenv("SCALEFREE_KERNELS", raising=False)
    fresh(monkeypatch)
    calls: list[str] = []

    def fake_load(name, **kwargs):
        calls.append(name)
        return "the module"

    monkeypatch.setattr(torch.utils.cpp_extension, "load", fake_load)
    return calls


def fresh(monkeypatch) -> None:
    """As in a new process: the kernel not decided yet."""
    monkeypatch.setitem(_kernels._state, "module", None)
    monkeypatch.setitem(_kernels._state, "path", None)


def cache(monkeypatch, root: Path) -> Path:
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(root))
    return root / _kernels._name()


def warned(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(WARNING)]
    assert len(lines) == 1, err
    return lines[0]


def falls_back(capsys, loads, *needles: str) -> None:
    assert _kernels.load_module() is None and _kernels.load_module() is None  # asked twice
    line = warned(capsys)  # ... warned once
    for n in needles:
        assert n in line
    assert loads == []  # never handed to torch's loader
    assert _kernels.kernel_path().startswith("torch (kernel build failed: ")
    opt, params, ref = run_pair("AdamW", steps=5)  # the optimizer still steps, on torch's path
    assert_matches(opt, params, ref)


def test_cache_variable_pointing_at_a_file(tmp_path, monkeypatch, capsys, loads):
    f = tmp_path / "file"
    f.write_text("x")
    cache(monkeypatch, f)
    falls_back(capsys, loads, f"the kernel cache {f} (TORCH_EXTENSIONS_DIR) is not a folder")


def test_cache_that_cannot_be_created(tmp_path, monkeypatch, capsys, loads):
    f = tmp_path / "file"
    f.write_text("x")
    cache(monkeypatch, f / "cache")
    falls_back(capsys, loads, f"the kernel cache {f / 'cache'} cannot be created", "Not a dir")


def test_unwritable_cache(tmp_path, monkeypatch, capsys, loads):
    cache(monkeypatch, tmp_path)
    monkeypatch.setattr(_kernel_cache.os, "access", lambda *a: False)  # root ignores mode bits
    falls_back(capsys, loads, f"the kernel cache {tmp_path} is not writable")


def test_missing_cache_folder_is_created_and_used(tmp_path, monkeypatch, capsys, loads):
    root = tmp_path / "not" / "there"
    cache(monkeypatch, root)
    assert _kernels.load_module() == "the module" and root.is_dir()
    assert loads == [_kernels._name()] and WARNING not in capsys.readouterr().err


def test_stale_build_lock_is_named_and_a_fresh_one_is_waited_for(
    tmp_path, monkeypatch, capsys, loads
):
    build = cache(monkeypatch, tmp_path)
    build.mkdir()
    lock = build / "lock"
    lock.touch()
    os.utime(lock, (time.time() - 7200,) * 2)  # left by a build killed two hours ago
    falls_back(capsys, loads, f"{lock} was left by an interrupted build 120 min ago", "delete it")
    fresh(monkeypatch)
    lock.touch()  # another process building right now: released 1.5 s later
    threading.Timer(1.5, lock.unlink).start()
    t0 = time.monotonic()
    assert _kernels.load_module() == "the module"
    assert time.monotonic() - t0 > 1.0 and WARNING not in capsys.readouterr().err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the ELF check is Linux's")
def test_damaged_build_is_named_before_it_is_loaded(tmp_path, monkeypatch, capsys, loads):
    build = cache(monkeypatch, tmp_path)
    build.mkdir()
    so = build / f"{_kernels._name()}.so"
    real = next(Path(np.__file__).parent.rglob("*.so"))  # a real shared library as a stand-in
    shutil.copyfile(real, so)
    assert _kernels.load_module() == "the module"  # a whole library passes and is recorded
    recorded = so.with_name(so.name + ".sha256")
    assert recorded.read_text().strip() == hashlib.sha256(so.read_bytes()).hexdigest()
    data = bytearray(so.read_bytes())
    data[len(data) // 2] ^= 0xFF
    so.write_bytes(bytes(data))
    loads.clear()
    fresh(monkeypatch)
    falls_back(capsys, loads, f"the cached build {so} is damaged (checksum mismatch)", "delete")
    recorded.unlink()  # a build from before the checksums: truncation is still caught
    so.write_bytes(real.read_bytes()[:4096])
    fresh(monkeypatch)
    falls_back(capsys, loads, f"the cached build {so} is damaged (truncated)")


def test_a_library_the_loader_refuses_is_named(tmp_path, monkeypatch, capsys, loads):
    cache(monkeypatch, tmp_path)

    def refuses(name, **kwargs):
        raise ImportError(f"{name}.so: invalid ELF header")

    monkeypatch.setattr(torch.utils.cpp_extension, "load", refuses)
    falls_back(capsys, loads, "the cached build cannot be loaded (ImportError:", "to rebuild it")


def test_training_completes_with_one_warning(tmp_path, monkeypatch, capsys, loads):
    f = tmp_path / "file"
    f.write_text("x")
    cache(monkeypatch, f)
    assert run(tmp_path / "logs") == 0
    assert "not a folder" in warned(capsys)
