"""One lock per run directory, so two launches (``train`` or ``sweep``) never write one run at once.

The lock is ``fcntl.flock`` on ``<run_dir>/.lock``, held by the process that trains the run for
the run's whole duration (a sweep worker, or a plain ``scalefree train``). flock, not a "lock file
exists" marker, because the kernel drops it when the holder dies (crash, OOM kill, Slurm preemption): a stale lock can never block a rerun. The
file itself is never deleted (deleting a lock file while another process waits on it is how
lock-file schemes race); it holds "host pid time" of the current holder, for messages only.

Caveat: a lock is seen across machines only where the filesystem makes flock cluster-coherent
(NFSv4 on Linux, Lustre mounted with ``-o flock``, GPFS); with node-local locking (e.g. Lustre's
``localflock``) it protects only launches on the same machine.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import time
from pathlib import Path

from scalefree.io import open_nofollow, open_regular

LOCK_FILE = ".lock"
# A short grace period for an acquire: another launcher's probe (is_locked) holds the lock for
# microseconds, which must not make a worker report "running elsewhere".
ACQUIRE_TIMEOUT_S = 0.5
_POLL_S = 0.05


def lock_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / LOCK_FILE


class RunLock:
    """Exclusive, non-blocking lock on one run directory; a context manager.

    ``acquire()`` returns False (never blocks for long) when another process holds it.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = lock_path(run_dir)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float = ACQUIRE_TIMEOUT_S) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = open_nofollow(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(_POLL_S)
        self._fd = fd
        # Who holds it, for the other launcher's message; best effort.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            info = f"{socket.gethostname()} pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"
            os.pwrite(fd, info.encode(), 0)
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        if not self.acquire():
            raise BlockingIOError(
                f"{self.path} is held by {holder(self.path.parent) or 'another process'}"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # a forgotten lock must not outlive its object
        with contextlib.suppress(Exception):
            self.release()


def is_locked(run_dir: str | os.PathLike) -> bool:
    """True when another process holds the run's lock (probes without creating anything)."""
    path = lock_path(run_dir)
    try:
        # read-only probe: creates and writes nothing; never blocks on a planted FIFO or follows a link
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):  # no run directory (yet): nobody holds it
        return False
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink is never our lock
            return False
        raise
    try:
        # A shared probe conflicts with the holder's exclusive lock but not with other probes.
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        raise
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def holder(run_dir: str | os.PathLike) -> str | None:
    """The "host pid since time" line written by the current (or last) holder, if any."""
    try:
        with open_regular(lock_path(run_dir)) as f:
            text = f.read(4096).decode("utf-8", errors="replace").strip()
    except (OSError, ValueError):
        return None
    return text or None


__all__ = ["LOCK_FILE", "RunLock", "holder", "is_locked", "lock_path"]
