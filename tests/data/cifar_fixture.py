"""Tiny CIFAR-10 / CIFAR-100 folders in the official "python version" format, built on the fly.

Other test packages (e.g. training CLI tests) import ``make_fake_cifar`` from here::

    from tests.data.cifar_fixture import make_fake_cifar
    make_fake_cifar(tmp_path, "CIFAR10")  # then --dataset CIFAR10 --dataroot tmp_path

Images are class-coloured noise (each class has its own mean RGB colour), so even a tiny model
can learn them; labels cycle through all classes so every class is present.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

_SPECS = {
    # name: (folder, train files, test file, meta file, label key, names key, num classes)
    "CIFAR10": (
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
        "batches.meta",
        "labels",
        "label_names",
        10,
    ),
    "CIFAR100": (
        "cifar-100-python",
        ("train",),
        "test",
        "meta",
        "fine_labels",
        "fine_label_names",
        100,
    ),
}


def write_pickle(path: Path, obj: Any, *, key_type: str = "bytes", protocol: int = 2) -> None:
    """Pickle a dict like the official files: ``bytes`` keys (as Python 2 ``str`` keys load with
    ``encoding="bytes"``) or ``str`` keys (as they load with ``encoding="latin1"``)."""
    if key_type not in ("bytes", "str"):
        raise ValueError(f"key_type must be 'bytes' or 'str', got {key_type!r}")
    if key_type == "bytes":
        obj = _as_py2_strings(obj)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def _as_py2_strings(obj: Any) -> Any:
    """Every ``str`` in nested dicts / lists as ``bytes``: how Python 2 strings load in Python 3
    with ``encoding="bytes"`` (keys, class names, filenames alike)."""
    if isinstance(obj, str):
        return obj.encode("latin1")
    if isinstance(obj, dict):
        return {_as_py2_strings(k): _as_py2_strings(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_as_py2_strings(v) for v in obj]
    return obj


def fake_batch(
    n: int, num_classes: int, rng: np.random.Generator, label_key: str, offset: int = 0
) -> dict[str, Any]:
    """One data file's dict: class-coloured uint8 images (n, 3072) and their labels."""
    labels = (np.arange(n) + offset) % num_classes
    rng.shuffle(labels)
    colours = np.random.default_rng(12345).integers(40, 216, size=(num_classes, 3))
    pixels = colours[labels][:, :, None] + rng.normal(0.0, 25.0, size=(n, 3, 1024))
    data = np.clip(np.rint(pixels), 0, 255).astype(np.uint8).reshape(n, 3072)
    batch: dict[str, Any] = {
        "batch_label": "fake batch",
        label_key: [int(v) for v in labels],  # the official files hold a list of ints
        "data": data,
        "filenames": [f"img_{offset + i:05d}.png" for i in range(n)],
    }
    if label_key == "fine_labels":
        batch["coarse_labels"] = [int(v) // 5 for v in labels]
    return batch


def make_fake_cifar(
    root: str | Path,
    name: str = "CIFAR10",
    n_train_per_batch: int = 20,
    n_test: int = 20,
    *,
    seed: int = 0,
    key_type: str = "bytes",
) -> Path:
    """Write a tiny official-layout CIFAR dataset under ``root``; return its folder.

    Args:
        root: the ``--dataroot`` to use; the dataset folder (``cifar-10-batches-py`` or
            ``cifar-100-python``) is created inside it.
        name: "CIFAR10" (5 train batches of ``n_train_per_batch``) or "CIFAR100" (one train
            file of ``n_train_per_batch`` images).
        n_test: images in the test file.
        seed: fixes pixels and label order.
        key_type: "bytes" or "str" dict keys (the two ways the official pickles load).
    """
    folder_name, train_files, test_file, meta_file, label_key, names_key, num_classes = _SPECS[name]
    folder = Path(root) / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    offset = 0
    for fname in train_files:
        batch = fake_batch(n_train_per_batch, num_classes, rng, label_key, offset)
        write_pickle(folder / fname, batch, key_type=key_type)
        offset += n_train_per_batch
    write_pickle(
        folder / test_file,
        fake_batch(n_test, num_classes, rng, label_key, offset),
        key_type=key_type,
    )
    meta: dict[str, Any] = {names_key: [f"class_{i}" for i in range(num_classes)]}
    if name == "CIFAR10":
        meta.update(num_cases_per_batch=n_train_per_batch, num_vis=3072)
    else:
        meta["coarse_label_names"] = [f"superclass_{i}" for i in range(20)]
    write_pickle(folder / meta_file, meta, key_type=key_type)
    return folder
