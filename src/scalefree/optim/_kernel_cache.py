"""Checks of the C++ kernel's build cache (``TORCH_EXTENSIONS_DIR``) before torch loads from it.

Every way the cache can be unusable becomes a :class:`KernelUnavailable` naming the cause and the
fix, so the caller (``_kernels.load_module``) warns once and trains on the pure-torch path:

* the cache is not a folder, cannot be created or is not writable (torch writes a lock file there
  even to load a finished build);
* a build lock left by a killed build (torch would wait on it forever): a lock younger than
  ``STALE_LOCK_S`` is another process building, and is waited for;
* a damaged build: loading a truncated shared library kills the process (SIGBUS), so the library
  is checked first: against the SHA-256 recorded beside it after its first successful load, or,
  for a build without one, its ELF headers against its size.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import time
from pathlib import Path

from scalefree.io import atomic_write_text

# A build holds torch's "lock" file for about a minute; one older than this was left by a build
# that was killed.
STALE_LOCK_S = 600.0


class KernelUnavailable(RuntimeError):
    """The kernel cache cannot be used; the message names the cause and the fix."""


def build_dirs(root: Path, name: str) -> list[Path]:
    """Where torch keeps the build ``name``: ``root/name`` with TORCH_EXTENSIONS_DIR set, else
    ``root/<python>_<device>/name``."""
    return [d for d in [root / name, *root.glob(f"*/{name}")] if d.is_dir()]


def check_cache(root: Path, name: str) -> None:
    """Raise KernelUnavailable for a cache the build would fail in or hang on (module docstring)."""
    if root.exists() and not root.is_dir():
        raise KernelUnavailable(f"the kernel cache {root} (TORCH_EXTENSIONS_DIR) is not a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KernelUnavailable(
            f"the kernel cache {root} cannot be created ({exc.strerror or exc})"
        ) from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise KernelUnavailable(f"the kernel cache {root} is not writable")
    for d in build_dirs(root, name):
        _wait_for_lock(d / "lock")
        for so in d.glob(f"{name}*.so"):
            _check_library(so)


def _wait_for_lock(lock: Path) -> None:
    while True:
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return
        if age > STALE_LOCK_S:
            raise KernelUnavailable(
                f"{lock} was left by an interrupted build {age / 60:.0f} min ago; delete it to "
                "rebuild the kernel"
            )
        time.sleep(1.0)  # another process is building: wait, as torch would


def _check_library(so: Path) -> None:
    data = so.read_bytes()
    recorded = so.with_name(so.name + ".sha256")
    fix = f"delete {so.parent} to rebuild it"
    if recorded.is_file():
        if recorded.read_text().strip() != hashlib.sha256(data).hexdigest():
            raise KernelUnavailable(f"the cached build {so} is damaged (checksum mismatch); {fix}")
    elif sys.platform.startswith("linux") and not _elf_complete(data):
        raise KernelUnavailable(f"the cached build {so} is damaged (truncated); {fix}")


def record_build(root: Path, name: str) -> None:
    """After a successful load: record each library's SHA-256 beside it (checked next time)."""
    for d in build_dirs(root, name):
        for so in d.glob(f"{name}*.so"):
            recorded = so.with_name(so.name + ".sha256")
            if not recorded.exists():
                try:
                    atomic_write_text(recorded, hashlib.sha256(so.read_bytes()).hexdigest() + "\n")
                except OSError:
                    pass  # a read-only cache that still loads: no record, the ELF check remains


def _elf_complete(data: bytes) -> bool:
    """Whether every program and section header of an ELF file, and every segment they point to,
    lies inside the file (a truncated library fails this)."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return False
    end = "<" if data[5] == 1 else ">"
    wide = data[4] == 2
    head = struct.unpack_from(end + ("HHIQQQIHHHHHH" if wide else "HHIIIIIHHHHHH"), data, 16)
    phoff, shoff, phentsize, phnum, shentsize, shnum = (*head[4:6], *head[8:10], *head[10:12])
    size = len(data)
    if phoff + phnum * phentsize > size or shoff + shnum * shentsize > size:
        return False
    for i in range(phnum):
        fields = struct.unpack_from(
            end + ("IIQQQQQQ" if wide else "IIIIIIII"), data, phoff + i * phentsize
        )
        offset, filesz = (fields[2], fields[5]) if wide else (fields[1], fields[4])
        if offset + filesz > size:
            return False
    return True
