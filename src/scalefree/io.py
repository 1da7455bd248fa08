"""Atomic file writes: write to a temporary name in the same folder, fsync, rename.

A reader never sees a half-written file; a crash leaves either the old file or the new one.

Symlinks: the program never creates one inside a run or sweep folder, so a file it writes that is
a symlink was planted by someone else (a shared log folder). Every write here refuses it
(``O_NOFOLLOW`` for appends and locks, a check before the rename for atomic writes) with a
:class:`SymlinkRefused` naming the file. The folders themselves may be symlinks.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from scalefree.errors import UsageError

MAX_READ_BYTES = 64 * 1024 * 1024  # JSON and other small files above this are refused unread


class SymlinkRefused(UsageError):
    """A file the program would write is a symlink it did not create (exit code 2)."""


def _refused(path: Path) -> SymlinkRefused:
    return SymlinkRefused(
        f"{path} is a symbolic link this program did not create; writing through it could change "
        "another file. Remove the link (or write to another folder) and run again"
    )


def refuse_symlink(path: str | os.PathLike) -> None:
    """Raise :class:`SymlinkRefused` when ``path`` is a symlink (dangling or not)."""
    if os.path.islink(path):
        raise _refused(Path(path))


def refuse_symlinks_in(folder: str | os.PathLike) -> None:
    """Refuse a run folder holding any symlink (checked before the first write of a run)."""
    folder = Path(folder)
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_symlink():
                raise _refused(folder / entry.name)
            if entry.is_dir(follow_symlinks=False):
                refuse_symlinks_in(folder / entry.name)


def open_nofollow(path: str | os.PathLike, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses a symlink at ``path`` (``O_NOFOLLOW``)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise _refused(Path(path)) from None
        raise


def open_append(path: str | os.PathLike, mode: str = "a") -> IO:
    """Open ``path`` for appending (created if missing), refusing a symlink."""
    fd = open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    return os.fdopen(fd, mode)


def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy ``src`` to ``dst`` atomically; neither may be a symlink."""
    refuse_symlink(src)
    with os.fdopen(open_nofollow(src, os.O_RDONLY), "rb") as f:
        data = f.read()
    atomic_write_bytes(dst, data)


def open_regular(path: str | os.PathLike) -> IO[bytes]:
    """Open a file for reading; ``ValueError`` unless it is a regular file (a FIFO or device planted
    under a run file's name would block a reader forever; it is opened without blocking)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError("not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_bytes_capped(path: str | os.PathLike, limit: int = MAX_READ_BYTES) -> bytes:
    """Read a small file, refusing (``ValueError``) one above ``limit`` bytes before reading it,
    or one that is not a regular file."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise ValueError(
                f"too large to be one of ours ({size} bytes, above the {limit}-byte limit for this "
                "kind of file)"
            )
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"too large to be one of ours (above the {limit}-byte limit)")
    return data


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on clean exit it is fsynced and renamed onto ``path``.

    Text is UTF-8; what UTF-8 cannot encode (a path's non-UTF-8 bytes, which Python holds as
    surrogates) is written as a backslash escape such as ``\\udcff`` rather than failing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_symlink(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp creates 0600; give the file the permissions a plain open() would (umask applies).
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        text = {} if "b" in mode else {"encoding": "utf-8", "errors": "backslashreplace"}
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        refuse_symlink(path)  # planted while we wrote: the rename would replace it, but refuse
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # e.g. ENOSPC from write/fsync
            raise OSError(exc.errno, exc.strerror, str(path)) from exc  # name the file
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_save(path: str | os.PathLike, writer: Callable[[IO[bytes]], None]) -> None:
    """Atomically write a binary file produced by ``writer(fileobj)`` (e.g. torch.save, np.savez)."""
    with atomic_open(path, "wb") as f:
        writer(f)


@contextlib.contextmanager
def staged_into(out: str | os.PathLike) -> Iterator[Path]:
    """A hidden folder inside ``out`` to write a set of files into; on clean exit each is renamed
    to the same place under ``out`` (so a failure part-way, e.g. a full disk, leaves every file of
    the previous set as it was), and the folder is removed either way."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        try:
            yield stage
        except OSError as exc:  # name the file where it was going, not its staged copy
            name = Path(str(exc.filename or ""))
            if name.is_relative_to(stage):
                raise OSError(exc.errno, exc.strerror, str(out / name.relative_to(stage))) from exc
            raise
        files = sorted(p.relative_to(stage) for p in stage.rglob("*") if not p.is_dir())
        for rel in files:
            refuse_symlink(out / rel)  # before the first rename: all of the new set or none
        for rel in files:
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / rel, out / rel)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(read_bytes_capped(path))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
