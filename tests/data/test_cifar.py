"""Reading the official CIFAR layout, and the error for every way a file can be wrong."""

from __future__ import annotations

import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from scalefree.data import DatasetError, cifar_spec, load_data, read_cifar
from scalefree.errors import UsageError
from tests.data.cifar_fixture import make_fake_cifar, write_pickle
from tests.helpers import assert_close


def _raw_file(folder: Path, fname: str) -> dict:
    with open(folder / fname, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


@pytest.mark.parametrize("key_type", ["bytes", "str"])
def test_cifar10_loads_exact_pixels_and_labels(tmp_path: Path, key_type: str) -> None:
    folder = make_fake_cifar(tmp_path, "CIFAR10", n_train_per_batch=7, n_test=5, key_type=key_type)
    raw = read_cifar("CIFAR10", tmp_path)
    assert raw.num_classes == 10 and raw.name == "CIFAR10"
    assert raw.train_images.shape == (35, 3, 32, 32) and raw.train_images.dtype == torch.uint8
    assert raw.test_images.shape == (5, 3, 32, 32)
    assert raw.train_labels.dtype == torch.int64 and raw.train_labels.shape == (35,)
    assert raw.class_names == tuple(f"class_{i}" for i in range(10))
    # Batches are concatenated in order 1..5; rows are channel-major RGB planes.
    third = _raw_file(folder, "data_batch_3")
    row = third["data"][2]
    img = raw.train_images[14 + 2]
    assert torch.equal(img[0].flatten(), torch.from_numpy(row[:1024]))  # red plane
    assert torch.equal(img[2].flatten(), torch.from_numpy(row[2048:]))  # blue plane
    assert raw.train_labels[16].item() == third["labels"][2]
    test = _raw_file(folder, "test_batch")
    assert raw.test_labels.tolist() == test["labels"]


@pytest.mark.parametrize("key_type", ["bytes", "str"])
def test_cifar100_loads_fine_labels(tmp_path: Path, key_type: str) -> None:
    folder = make_fake_cifar(
        tmp_path, "CIFAR100", n_train_per_batch=120, n_test=30, key_type=key_type
    )
    raw = read_cifar("cifar100", tmp_path)
    assert raw.num_classes == 100 and len(raw.class_names) == 100
    assert raw.train_images.shape == (120, 3, 32, 32)
    assert raw.test_images.shape == (30, 3, 32, 32)
    assert raw.train_labels.tolist() == _raw_file(folder, "train")["fine_labels"]
    assert int(raw.train_labels.max()) > 20  # fine, not coarse, labels


def test_name_aliases() -> None:
    assert cifar_spec("cifar-10").name == "CIFAR10"
    assert cifar_spec("Cifar_100").name == "CIFAR100"
    with pytest.raises(UsageError, match="CIFAR10, CIFAR100"):
        cifar_spec("MNIST")


def test_shared_subset_loads(cifar10_subset: Path) -> None:
    bundle = load_data("CIFAR10", cifar10_subset)
    assert len(bundle.train_images) == 5085 and len(bundle.eval_images) == 1017
    assert bundle.eval_split == "test"
    assert bundle.train_labels.bincount(minlength=10).min() > 400  # roughly balanced
    assert bundle.train_labels.max() == 9 and bundle.eval_labels.max() == 9
    # Close to the well-known full-CIFAR-10 statistics (125.3, 123.0, 113.9) / (63.0, 62.1, 66.7).
    assert_close(bundle.mean, torch.tensor([125.3, 123.0, 113.9]), atol=3, rtol=0)
    assert_close(bundle.std, torch.tensor([63.0, 62.1, 66.7]), atol=3, rtol=0)
    assert bundle.class_names[0] == "airplane"


# -------------------------------------------------------------------------------- malformed files

Mutation = Callable[[dict], None]


def _set(key: str, value_fn: Callable[[dict], object]) -> Mutation:
    def mutate(d: dict) -> None:
        d[key] = value_fn(d)

    return mutate


def _drop(key: str) -> Mutation:
    return lambda d: d.pop(key)


CASES: list[tuple[str, str, Mutation, str]] = [
    # (id, file, mutation of the loaded dict, expected words in the message)
    ("missing-data", "data_batch_2", _drop("data"), "missing key 'data'"),
    ("missing-labels", "test_batch", _drop("labels"), "missing key 'labels'"),
    (
        "float-data",
        "data_batch_4",
        _set("data", lambda d: d["data"].astype(np.float32)),
        "dtype float32, expected uint8",
    ),
    (
        "short-rows",
        "data_batch_1",
        _set("data", lambda d: np.ascontiguousarray(d["data"][:, :3071])),
        "shape (20, 3071)",
    ),
    ("flat-data", "data_batch_1", _set("data", lambda d: d["data"].reshape(-1)), "shape (61440,)"),
    ("list-data", "data_batch_5", _set("data", lambda d: d["data"].tolist()), "is a list"),
    (
        "label-too-big",
        "data_batch_3",
        _set("labels", lambda d: [10] + d["labels"][1:]),
        "range over [0, 10], expected [0, 9]",
    ),
    (
        "label-negative",
        "test_batch",
        _set("labels", lambda d: [-1] + d["labels"][1:]),
        "range over [-1,",
    ),
    (
        "label-count",
        "data_batch_2",
        _set("labels", lambda d: d["labels"][:-1]),
        "19 entries but 'data' has 20",
    ),
    (
        "label-float",
        "data_batch_2",
        _set("labels", lambda d: [0.5] * len(d["labels"])),
        "flat list of integers",
    ),
    ("meta-names", "batches.meta", _set("label_names", lambda d: ["a", "b"]), "10 class names"),
]


@pytest.mark.parametrize("fname,mutate,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_file_names_file_and_fix(
    fake_cifar10: Path, fname: str, mutate: Mutation, expected: str
) -> None:
    path = fake_cifar10 / "cifar-10-batches-py" / fname
    d = _raw_file(path.parent, fname)
    mutate(d)
    write_pickle(path, d)
    with pytest.raises(DatasetError) as info:
        load_data("CIFAR10", fake_cifar10)
    msg = str(info.value)
    assert str(path) in msg and expected in msg
    assert "--download" in msg and "--dataroot" in msg
    assert isinstance(info.value, UsageError)  # the CLI exits 2 with the message


def test_cifar100_label_range_uses_100_classes(fake_cifar100: Path) -> None:
    path = fake_cifar100 / "cifar-100-python" / "test"
    d = _raw_file(path.parent, "test")
    d["fine_labels"][0] = 100
    write_pickle(path, d)
    with pytest.raises(DatasetError, match=r"expected \[0, 99\]") as info:
        read_cifar("CIFAR100", fake_cifar100)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty", "not-a-dict"])
def test_corrupt_pickle_names_file(fake_cifar10: Path, how: str) -> None:
    path = fake_cifar10 / "cifar-10-batches-py" / "data_batch_3"
    blob = path.read_bytes()
    if how == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif how == "garbage":
        path.write_bytes(b"<html>404 not found</html>" * 10)
    elif how == "empty":
        path.write_bytes(b"")
    else:
        write_pickle(path, [1, 2, 3])
    with pytest.raises(DatasetError) as info:
        read_cifar("CIFAR10", fake_cifar10)
    msg = str(info.value)
    assert str(path) in msg and "--download" in msg


def test_pickle_with_code_is_refused(fake_cifar10: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    path = fake_cifar10 / "cifar-10-batches-py" / "batches.meta"
    write_pickle(path, {"label_names": Evil()}, key_type="str")
    with pytest.raises(DatasetError, match="refusing to load global") as info:
        read_cifar("CIFAR10", fake_cifar10)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_missing_folder_names_path_and_fixes(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_data("CIFAR100", tmp_path / "nowhere")
    msg = str(info.value)
    assert str(tmp_path / "nowhere" / "cifar-100-python") in msg
    assert "--download" in msg and "--dataroot" in msg


def test_dataroot_pointing_inside_the_folder_gets_a_hint(fake_cifar10: Path) -> None:
    inner = fake_cifar10 / "cifar-10-batches-py"
    with pytest.raises(DatasetError, match=f"--dataroot should be {fake_cifar10}"):
        read_cifar("CIFAR10", inner)


@pytest.mark.parametrize("fname", ["data_batch_4", "batches.meta", "test_batch"])
def test_missing_file_names_it(fake_cifar10: Path, fname: str) -> None:
    path = fake_cifar10 / "cifar-10-batches-py" / fname
    path.unlink()
    with pytest.raises(DatasetError) as info:
        read_cifar("CIFAR10", fake_cifar10)
    assert f"{path} is missing" in str(info.value) and "--download" in str(info.value)


def test_subset_style_py2_pickle_loads(cifar10_subset: Path, tmp_path: Path) -> None:
    """A real Python 2 pickle (bytes keys, numpy.core globals) read from a copied subset file."""
    folder = make_fake_cifar(tmp_path, "CIFAR10", n_train_per_batch=4, n_test=4)
    shutil.copy(cifar10_subset / "cifar-10-batches-py" / "test_batch", folder / "test_batch")
    raw = read_cifar("CIFAR10", tmp_path)
    assert raw.test_images.shape == (1017, 3, 32, 32)
