"""Per-run locks: exclusive, non-blocking, released by the OS when the holder dies."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from scalefree.sweep.locking import LOCK_FILE, RunLock, holder, is_locked


def test_lock_is_exclusive_and_released(tmp_path):
    run_dir = tmp_path / "run"
    assert not is_locked(run_dir) and not run_dir.exists()  # probing creates nothing
    a, b = RunLock(run_dir), RunLock(run_dir)
    assert a.acquire()
    assert is_locked(run_dir)
    assert not b.acquire(timeout=0.1)  # another descriptor, even in this process, is refused
    assert "pid" in holder(run_dir)
    a.release()
    assert not is_locked(run_dir)
    assert b.acquire()
    b.release()
    assert (run_dir / LOCK_FILE).exists()  # the file stays; only the flock matters


def test_context_manager_raises_when_held(tmp_path):
    with RunLock(tmp_path), pytest.raises(BlockingIOError, match="held by"):
        with RunLock(tmp_path):
            pass
    assert not is_locked(tmp_path)


def test_a_dead_holders_lock_is_free(tmp_path):
    code = (
        "import sys, time; from scalefree.sweep.locking import RunLock; "
        f"l = RunLock({str(tmp_path)!r}); assert l.acquire(); print('held', flush=True); "
        "time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert is_locked(tmp_path)
        proc.kill()  # no cleanup code runs: the kernel drops the flock
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while is_locked(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_locked(tmp_path)
        assert RunLock(tmp_path).acquire()
    finally:
        proc.kill()
