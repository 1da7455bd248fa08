"""A sweep's progress display (``scalefree sweep --progress``): one line per finished run under a
header naming the columns, or a bar over the runs on a terminal, or nothing but the summary.

    run     status              test_error       time  name
    [1/8]   completed               0.8984      28.1s  synthetic_ResNet20_...
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

PROGRESS_MODES = ("auto", "bar", "plain", "none")


def progress_header(total: int) -> str:
    """Column names aligned with :func:`scalefree.sweep.runner.format_result`'s lines."""
    width = 2 * len(str(total)) + 3  # "[ 3/12]"
    return f"{'run':<{width}} {'status':<19} {'test_error':>10} {'time':>10}  name"


class SweepProgress:
    """Shows each finished run's line (``result``); the header comes before the first one."""

    def __init__(self, mode: str, total: int, info: Callable[[str], None]) -> None:
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "plain"
        self.mode, self.total, self.info = mode, total, info
        self.bar: Any = None
        self._header_shown = False

    def result(self, line: str) -> None:
        if self.mode == "none":
            return
        if self.mode == "bar" and self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="run", dynamic_ncols=True, leave=False)
        say = self.bar.write if self.bar is not None else self.info
        if not self._header_shown:
            self._header_shown = True
            say(progress_header(self.total))
        say(line)
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


__all__ = ["PROGRESS_MODES", "SweepProgress", "progress_header"]
