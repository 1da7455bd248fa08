"""Read CIFAR-10 / CIFAR-100 from the official "python version" layout, with structural checks.

Layout under ``dataroot`` (exactly what the official archives extract to)::

    cifar-10-batches-py/  data_batch_1 .. data_batch_5, test_batch, batches.meta
    cifar-100-python/     train, test, meta

Each file is a pickled dict (written by Python 2, so keys arrive as ``bytes`` with
``encoding="bytes"`` and as ``str`` with ``encoding="latin1"``; both are accepted). Integrity is
checked structurally (keys, dtype, shape, label range), not by MD5: copies that are legitimately
different from the official files (e.g. the shared subset) must load, and MD5 is verified only for
archives this package downloads itself (``download.py``).

Unpickling is restricted to the handful of globals a numpy array needs, so a malicious file in
``dataroot`` cannot run code.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalefree.data.errors import DatasetError
from scalefree.data.raw import RawDataset
from scalefree.errors import UsageError

IMAGE_SHAPE = (3, 32, 32)
IMAGE_NUMEL = 3 * 32 * 32


@dataclass(frozen=True)
class CifarSpec:
    """Where one CIFAR variant lives on disk and online, and how its files are keyed."""

    name: str  # registry / CLI name, e.g. "CIFAR10"
    display: str  # human name, e.g. "CIFAR-10"
    folder: str  # folder the official archive extracts to, relative to dataroot
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: str
    names_key: str  # class-name list in the meta file
    num_classes: int
    url: str
    md5: str  # of the archive at ``url``
    archive_mb: int  # approximate download size, for messages

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train_files, self.test_file, self.meta_file)


CIFAR10 = CifarSpec(
    name="CIFAR10",
    display="CIFAR-10",
    folder="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_file="test_batch",
    meta_file="batches.meta",
    label_key="labels",
    names_key="label_names",
    num_classes=10,
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
    archive_mb=163,
)

CIFAR100 = CifarSpec(
    name="CIFAR100",
    display="CIFAR-100",
    folder="cifar-100-python",
    train_files=("train",),
    test_file="test",
    meta_file="meta",
    label_key="fine_labels",
    names_key="fine_label_names",
    num_classes=100,
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    md5="eb9058c3a382ffc7106e4002c42a8d85",
    archive_mb=161,
)

CIFAR_SPECS: Mapping[str, CifarSpec] = {s.name: s for s in (CIFAR10, CIFAR100)}


def cifar_spec(name: str) -> CifarSpec:
    """Look up a CIFAR variant; accepts "CIFAR10", "cifar10", "CIFAR-10", "cifar_100", ..."""
    key = name.upper().replace("-", "").replace("_", "")
    if key not in CIFAR_SPECS:
        raise UsageError(f"unknown CIFAR dataset {name!r}; choose one of: {', '.join(CIFAR_SPECS)}")
    return CIFAR_SPECS[key]


def cifar_folder(name: str, dataroot: str | Path) -> Path:
    """The folder the official archive of ``name`` extracts to under ``dataroot``."""
    return Path(dataroot).expanduser() / cifar_spec(name).folder


def missing_files(spec: CifarSpec, dataroot: str | Path) -> list[Path]:
    """Required files of ``spec`` that are not regular files under ``dataroot``."""
    folder = Path(dataroot).expanduser() / spec.folder
    return [folder / f for f in spec.files if not (folder / f).is_file()]


# --------------------------------------------------------------------------- restricted unpickling

# Everything a pickled numpy array (Python 2 or 3, numpy 1 or 2) or list of numpy ints refers to.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 writes bytes at protocol 2
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """An Unpickler that only resolves the globals numpy arrays need (no code execution)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            # numpy 2 renamed numpy.core to numpy._core; the old name warns on import.
            module = "numpy._core." + module.removeprefix("numpy.core.")
        return super().find_class(module, name)


def _fix_hint(spec: CifarSpec, dataroot: Path) -> str:
    folder = dataroot / spec.folder
    return (
        f"delete {folder} and re-run with --download, "
        f"or point --dataroot at a folder holding an intact {spec.folder}/"
    )


def load_pickle(path: Path, spec: CifarSpec, dataroot: Path) -> dict[str, Any]:
    """Load one CIFAR pickle as a dict with ``str`` keys; failures raise DatasetError naming it."""
    try:
        with open(path, "rb") as f:
            obj = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise DatasetError(
            f"{path} is missing ({spec.display} needs {', '.join(spec.files)}); "
            + _fix_hint(spec, dataroot)
        ) from None
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from e
    except Exception as e:  # truncated / corrupt / not a pickle: many exception types
        raise DatasetError(
            f"{path} is truncated or corrupt ({type(e).__name__}: {e}); "
            + _fix_hint(spec, dataroot)
        ) from e
    if not isinstance(obj, dict):
        raise DatasetError(
            f"{path} holds a {type(obj).__name__}, expected a dict; " + _fix_hint(spec, dataroot)
        )
    # Python 2 str keys arrive as bytes under encoding="bytes"; latin1 is their original codec.
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _read_batch(path: Path, spec: CifarSpec, dataroot: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3072) uint8 and labels (N,) int64 of one data file, structurally validated."""
    d = load_pickle(path, spec, dataroot)

    def bad(problem: str) -> DatasetError:
        return DatasetError(
            f"{path} is not a valid {spec.display} file: {problem}; " + _fix_hint(spec, dataroot)
        )

    for key in ("data", spec.label_key):
        if key not in d:
            raise bad(f"missing key {key!r} (has {sorted(map(str, d))})")
    data = d["data"]
    if not isinstance(data, np.ndarray):
        raise bad(f"'data' is a {type(data).__name__}, expected a numpy uint8 array (N, 3072)")
    if data.dtype != np.uint8:
        raise bad(f"'data' has dtype {data.dtype}, expected uint8")
    if data.ndim != 2 or data.shape[1] != IMAGE_NUMEL or data.shape[0] == 0:
        raise bad(f"'data' has shape {data.shape}, expected (N, {IMAGE_NUMEL}) with N > 0")
    try:
        labels = np.asarray(d[spec.label_key])
    except Exception as e:  # ragged nested lists and the like
        raise bad(f"{spec.label_key!r} is not a list of integers ({e})") from e
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise bad(
            f"{spec.label_key!r} must be a flat list of integers, got {labels.dtype} "
            f"of shape {labels.shape}"
        )
    if len(labels) != len(data):
        raise bad(f"{spec.label_key!r} has {len(labels)} entries but 'data' has {len(data)} images")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= spec.num_classes:
        raise bad(f"labels range over [{lo}, {hi}], expected [0, {spec.num_classes - 1}]")
    return data, labels.astype(np.int64)


def _read_class_names(spec: CifarSpec, dataroot: Path) -> tuple[str, ...]:
    path = dataroot / spec.folder / spec.meta_file
    d = load_pickle(path, spec, dataroot)
    names = d.get(spec.names_key)
    if not isinstance(names, list) or len(names) != spec.num_classes:
        raise DatasetError(
            f"{path} is not a valid {spec.display} meta file: {spec.names_key!r} must list "
            f"{spec.num_classes} class names; " + _fix_hint(spec, dataroot)
        )
    return tuple(n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names)


def read_cifar(name: str, dataroot: str | Path) -> RawDataset:
    """Read and validate CIFAR-10 or CIFAR-100 from ``dataroot`` into CPU tensors.

    Raises DatasetError (naming the path and the fix) when the folder or a file is missing, a
    pickle is truncated or corrupt, or a file lacks a key, has the wrong dtype / shape, or
    labels out of range.
    """
    spec = cifar_spec(name)
    root = Path(dataroot).expanduser()
    folder = root / spec.folder
    if not folder.is_dir():
        hint = ""
        if (root / spec.train_files[0]).is_file():  # user pointed at the inner folder itself
            hint = f" (it looks like --dataroot should be {root.parent}, the folder above)"
        raise DatasetError(
            f"{spec.display} not found: {folder} does not exist{hint}. Pass --download to fetch "
            f"it (~{spec.archive_mb} MB) into {root}, or --dataroot pointing at the folder that "
            f"contains {spec.folder}/"
        )
    missing = missing_files(spec, root)
    if missing:
        raise DatasetError(
            f"{missing[0]} is missing ({spec.display} needs {', '.join(spec.files)} in {folder}); "
            + _fix_hint(spec, root)
        )
    class_names = _read_class_names(spec, root)
    train = [_read_batch(folder / f, spec, root) for f in spec.train_files]
    test_data, test_labels = _read_batch(folder / spec.test_file, spec, root)
    train_data = np.concatenate([d for d, _ in train]) if len(train) > 1 else train[0][0]
    train_labels = np.concatenate([lab for _, lab in train])

    def images(data: np.ndarray) -> torch.Tensor:
        # Rows are channel-major RGB (1024 R, 1024 G, 1024 B), i.e. already C x H x W.
        data = np.ascontiguousarray(data)
        if not data.flags.writeable:  # torch warns on read-only arrays; copy only then
            data = data.copy()
        return torch.from_numpy(data.reshape(-1, *IMAGE_SHAPE))

    return RawDataset(
        name=spec.name,
        num_classes=spec.num_classes,
        train_images=images(train_data),
        train_labels=torch.from_numpy(train_labels),
        test_images=images(test_data),
        test_labels=torch.from_numpy(test_labels),
        class_names=class_names,
    )
