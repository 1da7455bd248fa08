"""The one tolerance helper used by every test."""

from __future__ import annotations

import torch


def assert_close(
    actual, expected, *, rtol: float | None = None, atol: float | None = None, msg: str = ""
):
    """The one tolerance helper: dtype-aware defaults (float64 tight, float32 loose)."""
    actual = torch.as_tensor(actual)
    expected = torch.as_tensor(expected, dtype=actual.dtype, device=actual.device)
    if rtol is None or atol is None:
        tight = actual.dtype == torch.float64
        rtol = rtol if rtol is not None else (1e-10 if tight else 1e-5)
        atol = atol if atol is not None else (1e-12 if tight else 1e-6)
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=msg or None)


def tiny_run(log_folder, *, sizes: tuple[int, int] = (256, 64), **overrides):
    """A RunConfig for a seconds-long smoke run: ResNet20 without BN on a synthetic set of
    ``sizes`` (training, test) images through the `synthetic_sizes` field, as a user would ask
    for it (``--synthetic-sizes``); ``overrides`` replace any field."""
    from scalefree.train.config import RunConfig

    base = dict(
        dataset="synthetic",
        synthetic_sizes=tuple(sizes),
        model="ResNet20",
        batch_norm=False,
        optim_method="AdamW",
        eta0=1e-3,
        weight_decay=1e-4,
        train_epochs=2,
        batchsize=64,
        log_folder=str(log_folder),
        progress="none",
        reproducible=True,
    )
    return RunConfig(**(base | overrides))


def synthetic_flags(n_train: int = 256, n_test: int = 64) -> list[str]:
    """The `scalefree train` flags of the same small synthetic set."""
    return ["--dataset", "synthetic", "--synthetic-sizes", str(n_train), str(n_test)]


def exit_code(main, argv) -> int:
    """``main(argv)``'s exit code, whether it returns it or argparse exits (a flag refused while
    the command line is parsed)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code
