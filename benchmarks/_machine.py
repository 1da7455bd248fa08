"""The machine a benchmark ran on, recorded with every result (shared by the benchmark scripts)."""

from __future__ import annotations

import os
import platform
from typing import Any

import torch

import scalefree


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return dict(
        cpu=cpu,
        logical_cpus=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
        python=platform.python_version(),
        scalefree=getattr(scalefree, "__version__", "unknown"),
        platform=platform.platform(),
        loadavg_at_start=load,
    )
