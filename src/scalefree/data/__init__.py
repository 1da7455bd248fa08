"""scalefree.data: CIFAR files, download + verify, synthetic data, and the on-device loader."""

from scalefree.data.cifar import CIFAR_SPECS, CifarSpec, cifar_folder, cifar_spec, read_cifar
from scalefree.data.distributed import shard_indices
from scalefree.data.download import download_cifar
from scalefree.data.errors import DatasetError
from scalefree.data.loader import (
    DATASETS,
    IMAGE_SIZES,
    DataBundle,
    TrainBatches,
    apply_augment,
    augment,
    augment_params,
    channel_stats,
    dataset_num_classes,
    downsample,
    eval_batches,
    load_data,
    normalize,
    split_indices,
)
from scalefree.data.raw import RawDataset
from scalefree.data.synthetic import make_synthetic

__all__ = [
    "CIFAR_SPECS",
    "DATASETS",
    "IMAGE_SIZES",
    "CifarSpec",
    "DataBundle",
    "DatasetError",
    "RawDataset",
    "TrainBatches",
    "apply_augment",
    "augment",
    "augment_params",
    "channel_stats",
    "cifar_folder",
    "cifar_spec",
    "dataset_num_classes",
    "downsample",
    "download_cifar",
    "eval_batches",
    "load_data",
    "make_synthetic",
    "normalize",
    "read_cifar",
    "shard_indices",
    "split_indices",
]
