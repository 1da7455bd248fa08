"""Download the official CIFAR archives, verify their MD5 and extract them safely and atomically.

Steps, each chosen so that an interrupted or bad download never leaves a half-populated dataset
folder that the loader would later trip over:

1. skip if every required file is already there;
2. stream the archive into a private temporary folder inside ``dataroot`` (same filesystem, so
   the final rename is atomic), hashing while writing;
3. check the byte count and the MD5; on mismatch delete everything and raise;
4. extract after rejecting absolute paths, ``..`` components, links and device files;
5. rename the extracted folder into place (a concurrent downloader that wins the race is fine).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath, PureWindowsPath

from scalefree.data.cifar import cifar_spec, missing_files
from scalefree.data.errors import DatasetError

_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 60.0


def download_cifar(
    name: str,
    dataroot: str | Path,
    url: str | None = None,
    md5: str | None = None,
    progress: bool = True,
) -> Path:
    """Download and extract CIFAR-10 / CIFAR-100 into ``dataroot``; return the dataset folder.

    Args:
        name: "CIFAR10" or "CIFAR100" (case-insensitive).
        dataroot: folder that will hold ``cifar-10-batches-py/`` or ``cifar-100-python/``;
            created if needed.
        url: archive location; default the official Toronto URL (override for a mirror).
        md5: expected MD5 of the archive; default the official archive's.
        progress: show a progress bar on stderr.

    Does nothing if all required files are already present. Raises DatasetError if the folder
    exists but is incomplete (it is the user's data: we do not delete it), if the download
    fails or is short, if the MD5 does not match, or if the archive is unsafe or lacks files.
    On any failure nothing is left behind in ``dataroot``.
    """
    spec = cifar_spec(name)
    root = Path(dataroot).expanduser()
    target = root / spec.folder
    missing = missing_files(spec, root)
    if not missing:
        return target
    if target.exists():
        missing = missing_files(spec, root)  # again: a concurrent download may just have finished
        if not missing:
            return target
        raise DatasetError(
            f"{target} exists but is incomplete ({missing[0].name} is missing); delete it and "
            f"re-run with --download"
        )
    url = url or spec.url
    md5 = (md5 or spec.md5).lower()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{spec.folder}.download-", dir=root))
    except OSError as e:
        raise DatasetError(
            f"cannot create a download folder in {root} ({e.strerror or e}); pass a writable "
            f"--dataroot"
        ) from e
    try:
        archive = tmp / "archive.tar.gz"
        digest = _fetch(url, archive, progress=progress, desc=spec.display, root=root)
        if digest != md5:
            raise DatasetError(
                f"MD5 mismatch for {url}: got {digest}, expected {md5}; the download is corrupt "
                f"or not the official archive. Nothing was kept in {root}; re-run with --download "
                f"to retry, or fetch the archive by hand and extract it into {root}"
            )
        extract_dir = tmp / "extract"
        _safe_extract(archive, extract_dir, spec.folder, url)
        extracted = extract_dir / spec.folder
        lacking = [f for f in spec.files if not (extracted / f).is_file()]
        if lacking:
            raise DatasetError(
                f"the archive from {url} has no {spec.folder}/{lacking[0]}; it is not the "
                f"official {spec.display} archive. Nothing was kept in {root}"
            )
        try:
            os.rename(extracted, target)  # atomic: readers see no folder or a complete one
        except OSError:
            if missing_files(spec, root):  # not a concurrent download that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _fetch(url: str, dest: Path, *, progress: bool, desc: str, root: Path) -> str:
    """Stream ``url`` into ``dest``; return the MD5 hex digest. Short reads are errors."""
    md5 = hashlib.md5(usedforsecurity=False)  # integrity check only (FIPS-safe)
    received = 0
    total: int | None = None
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as resp, open(dest, "wb") as out:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar = _progress_bar(total, desc) if progress else None
            try:
                while chunk := resp.read(_CHUNK_BYTES):
                    out.write(chunk)
                    md5.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise DatasetError(
            f"could not download {url}: {reason}. Check the network connection, or download the "
            f"archive by hand and extract it into {root}"
        ) from e
    # http.client does not raise when the server closes early, so compare with Content-Length.
    if total is not None and received != total:
        raise DatasetError(
            f"download of {url} is incomplete: got {received} of {total} bytes. Nothing was kept "
            f"in {root}; re-run with --download to retry"
        )
    return md5.hexdigest()


def _progress_bar(total: int | None, desc: str):  # -> tqdm | None
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency, but a missing bar must not stop a download
        return None
    return tqdm(
        total=total,
        desc=f"downloading {desc}",
        unit="B",
        unit_scale=True,
        file=sys.stderr,
        leave=False,
    )


def _check_member(member: tarfile.TarInfo, folder: str, url: str) -> None:
    """Reject members that could write outside the extraction folder or are not plain data."""
    name = member.name
    path = PurePosixPath(name)
    problem = None
    if path.is_absolute() or PureWindowsPath(name).anchor:
        problem = "an absolute path"
    elif ".." in path.parts:
        problem = "a '..' component"
    elif not (member.isfile() or member.isdir()):
        problem = "a link or special file"
    elif not path.parts or path.parts[0] != folder:
        problem = f"outside {folder}/"
    if problem:
        raise DatasetError(
            f"refusing to extract the archive from {url}: member {name!r} is {problem}. "
            f"It is not the official archive; nothing was kept"
        )


def _safe_extract(archive: Path, dest: Path, folder: str, url: str) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, folder, url)
            if hasattr(tarfile, "data_filter"):  # Python >= 3.12 and security backports
                tar.extractall(dest, members=members, filter="data")
            else:  # our own checks above already cover what the "data" filter would reject
                tar.extractall(dest, members=members)
    except DatasetError:
        raise
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DatasetError(
            f"the archive from {url} is not a readable .tar.gz ({e}); nothing was kept"
        ) from e
