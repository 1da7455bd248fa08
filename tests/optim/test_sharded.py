"""Sharded optimizers on 2 gloo ranks (CPU) against one process, for all six variants.

* ZeroRedundancyOptimizer(optimizer_class=<variant>): every rank steps only its own parameters;
  AdamProxL2's group norm needs ``norm_process_group`` (shown: without it the result differs).
* FSDP2 (``fully_shard``): parameters are DTensors sharded on dim 0; the norm is global by itself.
* FSDP1 (flat parameters): AdamProxL2 with ``norm_process_group`` is exact; without it, and with
  ``prox_norm="tensor"``, it raises a clear error instead of using per-shard norms.

One spawn of 2 processes for the whole module (``tests/optim/_sharded.py`` holds the scenarios and
the worker); the tests compare what each rank recorded with the same scenario in this process.
"""

from __future__ import annotations

import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.helpers import assert_close
from tests.optim import _sharded
from tests.optim._sharded import NAMES, single_process

pytestmark = [
    pytest.mark.skipif(not dist.is_gloo_available(), reason="needs the gloo backend"),
    pytest.mark.xdist_group("gloo"),  # with --dist loadgroup, one spawn for the module
]

WORLD = 2
TOL = dict(rtol=1e-10, atol=1e-12)  # float64; only summation order differs from one process
SPAWN_TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """Run every scenario on 2 gloo ranks once; per rank, scenario key -> result."""
    out = tmp_path_factory.mktemp("sharded")
    ctx = mp.start_processes(
        _sharded.worker,
        args=(WORLD, _free_port(), str(out)),
        nprocs=WORLD,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + SPAWN_TIMEOUT_S
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"the {WORLD} gloo ranks did not finish in {SPAWN_TIMEOUT_S} s")
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def result(ranks, key) -> list[list[torch.Tensor]]:
    """Each rank's final parameters for ``key``; a recorded exception fails the test with it."""
    per_rank = []
    for r, res in enumerate(ranks):
        got = res[key]
        if isinstance(got, dict):
            pytest.fail(
                f"rank {r} raised in {key}: {got['error']}: {got['message']}\n{got['traceback']}"
            )
        per_rank.append(got)
    return per_rank


def assert_matches_single_process(ranks, key) -> None:
    expected = single_process(key)
    for r, params in enumerate(result(ranks, key)):
        assert len(params) == len(expected)
        for i, (a, e) in enumerate(zip(params, expected)):
            assert_close(a, e, **TOL, msg=f"{key} rank {r} parameter {i}")


@pytest.mark.parametrize("name", NAMES)
def test_zero_redundancy_optimizer_matches_one_process(ranks, name):
    assert_matches_single_process(ranks, ("zero", name))  # AdamProxL2 with norm_process_group


def test_zero_prox_l2_group_norm_without_norm_process_group_is_per_shard(ranks):
    """The negative control: each rank's norm covers only its shard, so the run differs."""
    expected = single_process(("zero", "AdamProxL2"))
    for params in result(ranks, ("zero", "AdamProxL2", "no-norm-group")):
        gap = max(float((a - e).abs().max()) for a, e in zip(params, expected))
        assert gap > 1e-4, "ZeRO + per-shard norms matched one process: the test cannot fail"


def test_zero_prox_l2_tensor_norm_needs_no_process_group(ranks):
    assert_matches_single_process(ranks, ("zero", "AdamProxL2", "tensor"))


@pytest.mark.parametrize("name", NAMES)
def test_fsdp2_fully_shard_matches_one_process(ranks, name):
    assert_matches_single_process(ranks, ("fsdp2", name))


def test_fsdp2_prox_l2_tensor_norm_matches_one_process(ranks):
    assert_matches_single_process(ranks, ("fsdp2", "AdamProxL2", "tensor"))


@pytest.mark.parametrize("name", NAMES)
def test_fsdp1_flat_parameters_match_one_process(ranks, name):
    assert_matches_single_process(ranks, ("fsdp1", name))  # AdamProxL2 with norm_process_group


@pytest.mark.parametrize("case", ["no-norm-group", "tensor"])
def test_fsdp1_prox_l2_without_a_global_norm_is_a_clear_error(ranks, case):
    for r, res in enumerate(ranks):
        got = res[("fsdp1", "AdamProxL2", case)]
        assert isinstance(got, dict), f"rank {r}: per-shard norms were used without an error"
        assert got["error"] in ("ValueError", "RuntimeError"), got["traceback"]
        msg = got["message"].lower()
        assert "fsdp" in msg and ("norm_process_group" in msg or "prox_norm" in msg), msg
