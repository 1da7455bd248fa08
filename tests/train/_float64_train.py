"""``python -m scalefree`` in float64, for tests that compare runs at rounding level.

The model is built in float64 (the default dtype) and the loader's batches are normalized to
float64. ``SCALEFREE_TEST_UNWEIGHTED=1`` drops DDP's uneven-batch loss weighting (every rank's
weight 1), the bug the distributed test must catch. Test support only; not part of the package.
"""

from __future__ import annotations

import os
import sys

import torch

import scalefree.data.loader as loader
import scalefree.train.loop as loop
from scalefree.cli import main

_normalize = loader.normalize


def _normalize64(images, mean, std, dtype=torch.float32, channels_last=False):
    return _normalize(images, mean, std, torch.float64, channels_last)


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    loader.normalize = _normalize64
    if os.environ.get("SCALEFREE_TEST_UNWEIGHTED") == "1":
        loop.rank_loss_weight = lambda local_n, world_size, global_n: 1.0
    sys.exit(main(sys.argv[1:]))
